// Paths given to the worker stay inside its data root: `..`, absolute paths elsewhere and symlinks
// pointing out are refused with an error that says what to do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PathOutsideDataRootError, resolveInDataRoot } from '../../common/paths.ts';

describe('resolveInDataRoot', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-root-'));
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-outside-'));
  fs.mkdirSync(path.join(root, 'in'));
  fs.writeFileSync(path.join(root, 'in', 'a.jsonl'), '');
  fs.symlinkSync(outside, path.join(root, 'escape'));
  fs.symlinkSync(path.join(root, 'in'), path.join(root, 'inner-link'));

  it('resolves relative paths, absolute paths inside, and paths not yet created', () => {
    const real = fs.realpathSync(root);
    expect(resolveInDataRoot(root, 'in/a.jsonl')).toBe(path.join(real, 'in', 'a.jsonl'));
    expect(resolveInDataRoot(root, path.join(root, 'in', 'a.jsonl'))).toBe(path.join(real, 'in', 'a.jsonl'));
    expect(resolveInDataRoot(root, 'out/2026-11-22/results')).toBe(
      path.join(real, 'out', '2026-11-22', 'results'),
    );
    expect(resolveInDataRoot(root, 'inner-link/a.jsonl')).toBe(path.join(real, 'in', 'a.jsonl'));
  });
  it('refuses .., absolute paths elsewhere and symlinks out, naming the fix', () => {
    for (const p of [
      '../x.jsonl',
      'in/../../x.jsonl',
      '/etc/passwd',
      outside,
      'escape/x.jsonl',
      'escape/new/dir',
    ]) {
      expect(() => resolveInDataRoot(root, p), p).toThrow(PathOutsideDataRootError);
    }
    expect(() => resolveInDataRoot(root, '../x.jsonl')).toThrow(/BATCHPILOT_DATA_DIR/);
  });
});
