// AtomicWriter on a disk that refuses the write: the failure reaches the caller (the next write or
// commit rejects) instead of an unhandled 'error' event that would kill the worker process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AtomicWriter } from '../../activities/lines.ts';

describe('AtomicWriter when the temporary file cannot be opened', () => {
  it('rejects the commit and leaves nothing under the final name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-atomic-'));
    const folder = path.join(dir, 'out');
    const target = path.join(folder, 'results.jsonl');
    const w = new AtomicWriter(target);
    // The open is asynchronous: take the folder away before it happens (ENOENT), as a disk that
    // went read-only or full would refuse it (EROFS, ENOSPC, EPERM).
    fs.rmSync(folder, { recursive: true });
    await w.writeLine('{"custom_id":"a"}').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    await expect(w.writeLine('{"custom_id":"b"}')).rejects.toThrow(/ENOENT/);
    await expect(w.commit()).rejects.toThrow(/ENOENT/);
    await w.abort();
    expect(fs.existsSync(target)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
