// The local folder as a JobStore: the contract every store keeps (test/support/store-contract.ts),
// and what only the local one promises: its files are exactly where layout.ts names them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkStorageSetting,
  outLocationOf,
  resolveLocation,
  workLocationOf,
} from '../../storage/location.ts';
import { LocalStore } from '../../storage/store.ts';
import { Stores } from '../../storage/workspace.ts';
import { storeContract } from '../support/store-contract.ts';

const roots: string[] = [];
const fresh = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-store-'));
  roots.push(dir);
  return dir;
};
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

storeContract('local folder', () => new LocalStore(fresh()));

describe('local folder', () => {
  it('keeps keys as paths under its root, and a workspace works in place with no scratch', async () => {
    const out = fresh();
    const store = new LocalStore(out);
    await store.write('.batchpilot/plan.json', '{}\n');
    expect(fs.readFileSync(path.join(out, '.batchpilot', 'plan.json'), 'utf8')).toBe('{}\n');
    const scratch = fresh();
    const ws = await new Stores({ scratchDir: scratch }).workspace(path.join(out, '.batchpilot'));
    expect(ws.remote).toBe(false);
    expect(ws.dir).toBe(path.join(out, '.batchpilot'));
    expect(await ws.pull('plan.json')).toBe(path.join(out, '.batchpilot', 'plan.json'));
    expect(await ws.has('plan.json')).toBe(true);
    await ws.release();
    expect(fs.readdirSync(scratch)).toEqual([]);
    expect(fs.existsSync(path.join(out, '.batchpilot', 'plan.json'))).toBe(true);
  });
});

describe('where a path points (BATCHPILOT_STORAGE)', () => {
  it('keeps s3:// paths, puts relative ones under an s3:// setting, and local ones under the data root', () => {
    const dataDir = fresh();
    expect(resolveLocation('s3://bkt/in/a.jsonl', undefined, dataDir)).toBe('s3://bkt/in/a.jsonl');
    expect(resolveLocation('s3://bkt/in/../b.jsonl', undefined, dataDir)).toBe('s3://bkt/b.jsonl');
    expect(resolveLocation('in.jsonl', 's3://bkt/jobs/', dataDir)).toBe('s3://bkt/jobs/in.jsonl');
    expect(resolveLocation('out/x', 's3://bkt', dataDir)).toBe('s3://bkt/out/x');
    expect(resolveLocation('in.jsonl', undefined, dataDir)).toBe(
      path.join(fs.realpathSync(dataDir), 'in.jsonl'),
    );
    const abs = path.join(fs.realpathSync(dataDir), 'local.jsonl');
    expect(resolveLocation(abs, 's3://bkt/jobs', dataDir)).toBe(abs);
  });

  it('refuses a setting that is not s3:// and a key that climbs above its prefix, naming the fix', () => {
    const dataDir = fresh();
    expect(() => resolveLocation('in.jsonl', '/mnt/nfs', dataDir)).toThrow(
      /BATCHPILOT_STORAGE=\/mnt\/nfs: give s3:\/\//,
    );
    expect(() => resolveLocation('in.jsonl', 's3://Upper/x', dataDir)).toThrow(
      /BATCHPILOT_STORAGE: .*lower case/,
    );
    expect(() => resolveLocation('../in.jsonl', 's3://bkt/jobs', dataDir)).toThrow(/climbs above/);
    expect(() => checkStorageSetting('s3://bkt/p/')).not.toThrow();
    expect(checkStorageSetting(undefined)).toBeUndefined();
  });

  it('names the work folder of an output location and back', () => {
    expect(workLocationOf('s3://bkt/jobs/out')).toBe('s3://bkt/jobs/out/.batchpilot');
    expect(outLocationOf('s3://bkt/jobs/out/.batchpilot')).toBe('s3://bkt/jobs/out');
    expect(workLocationOf('/data/out')).toBe('/data/out/.batchpilot');
    expect(outLocationOf('/data/out/.batchpilot')).toBe('/data/out');
  });
});
