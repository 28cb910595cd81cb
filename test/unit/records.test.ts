// The work folder's small records are parsed with their schemas on read (storage/records.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJobRecord, readCollectedMarker, readPlanSummary } from '../../storage/records.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-records-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

describe('work folder records', () => {
  it('a job record names a job only when whole', () => {
    const fingerprint = { input: 'in.jsonl', inputBytes: 3, inputMtimeMs: 1, options: '{}' };
    const ok = { jobId: 'j', fingerprint, createdAt: 'now' };
    expect(parseJobRecord(JSON.stringify(ok))).toEqual(ok);
    expect(parseJobRecord(JSON.stringify({ jobId: 'j', createdAt: 'now' }))).toBeUndefined();
    expect(parseJobRecord('{"jobId":"j","finger')).toBeUndefined();
    expect(parseJobRecord(undefined)).toBeUndefined();
  });

  it('a collected marker parses, and a damaged one fails naming its file and the fix', async () => {
    const m = { succeeded: 1, failed: 0, retry: 2, batchId: 'b', batchStatus: 'completed', fileErrors: [] };
    expect(await readCollectedMarker(file('r1-u0.json', JSON.stringify(m)))).toEqual(m);
    const bad = file('r1-u1.json', JSON.stringify({ ...m, succeeded: 'one' }));
    await expect(readCollectedMarker(bad)).rejects.toThrow(
      /r1-u1\.json is not a batchpilot collected marker \(succeeded: .*--force/,
    );
    await expect(readCollectedMarker(file('r1-u2.json', '{'))).rejects.toThrow(/r1-u2\.json is not JSON/);
  });

  it('plan.json is undefined when absent and checked when present', async () => {
    expect(await readPlanSummary(path.join(dir, 'none.json'))).toBeUndefined();
    const plan = {
      paths: { input: 'i', outDir: 'o', workDir: 'o/.batchpilot' },
      lines: 2,
      valid: 2,
      rejected: 0,
      shardLines: [2],
      models: ['m'],
    };
    expect(await readPlanSummary(file('plan.json', JSON.stringify(plan)))).toEqual(plan);
    await expect(
      readPlanSummary(file('plan2.json', JSON.stringify({ ...plan, shardLines: 'x' }))),
    ).rejects.toThrow(/plan2\.json is not a batchpilot plan summary/);
  });
});
