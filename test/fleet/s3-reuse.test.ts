// Answers reused across jobs on object storage, with no shared disk: worker A runs a job whose
// input and outputs are objects; worker B, on another data root and another scratch folder, runs
// a second job whose input is the first's plus new lines and one changed body, and sends only
// those (emulator stats). The answers live in the job storage's bucket (`<prefix>/.batchpilot-answers/`).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobSummary } from '../../common/job-types.ts';
import { ObjectStore } from '../../storage/s3.ts';
import type { DevServer } from '../../worker/dev-server.ts';
import { startObjectTestBed, type ObjectTestBed } from '../support/object-server.ts';
import { FAST_FAULTS, startHarness, type Harness } from '../support/harness.ts';

const BUCKET = 'batchpilot-reuse';
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'batchpilot.ts');
const limits = { maxLines: 20, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

interface Result {
  custom_id: string;
  batchpilot_reused?: boolean;
  response: { body: { choices: { message: { content: string } }[] } };
}

const request = (id: string, i: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'qwen-plus', messages: [{ role: 'user', content: `question ${i}` }], ...extra },
  });

describe('answers reused across workers on object storage', () => {
  let bed: ObjectTestBed;
  let dir: string;
  let temporal: DevServer;
  let bundlePath: string;
  let objects: ObjectStore;

  beforeAll(async () => {
    bed = await startObjectTestBed('s3reuse', BUCKET);
    ({ dir, temporal, bundlePath } = bed);
    objects = new ObjectStore();
  });
  afterAll(async () => {
    objects?.close();
    await bed?.close();
  });

  /** A worker of the fleet: its own data root (the harness's) and its own scratch folder. */
  const worker = (scratch: string) =>
    startHarness({
      temporalAddress: temporal.address,
      workflowBundlePath: bundlePath,
      storage: `s3://${BUCKET}/jobs`,
      scratchDir: path.join(dir, scratch),
      faults: FAST_FAULTS,
      answers: true,
    });
  const object = async (key: string) =>
    (await buffer(await objects.read({ bucket: BUCKET, key }))).toString();
  const put = (key: string, rows: string[]) =>
    objects.write({ bucket: BUCKET, key }, rows.join('\n') + '\n').then(() => `s3://${BUCKET}/${key}`);
  const results = async (out: string) =>
    (await object(`jobs/${out}/results.jsonl`))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Result);
  const summaryOf = async (out: string) => JSON.parse(await object(`jobs/${out}/summary.json`)) as JobSummary;
  const sentBy = async (h: Harness, run: () => Promise<unknown>) => {
    const before = (await h.stats()).linesInBatches;
    await run();
    return (await h.stats()).linesInBatches - before;
  };
  const keysUnder = async (prefix: string) => {
    const out: string[] = [];
    for await (const o of objects.list({ bucket: BUCKET, key: prefix })) out.push(o.key);
    return out;
  };

  it("a second worker reuses the first one's answers: only new and changed lines are sent", async () => {
    const a = await worker('scratch-a');
    let first: string;
    try {
      first = await put(
        'inputs/first.jsonl',
        Array.from({ length: 50 }, (_, i) => request(`a-${i}`, i)),
      );
      expect(await sentBy(a, () => a.runJob(first, 'out-first', { limits }, 's3-reuse-first'))).toBe(50);
      expect((await summaryOf('out-first')).lines).toEqual({
        total: 50,
        succeeded: 50,
        failed: 0,
        rejected: 0,
        reused: 0,
      });
    } finally {
      await a.close();
    }
    // One segment and its index per collected unit (50 lines in units of 20), in the job bucket.
    expect(await keysUnder('jobs/.batchpilot-answers/idx/')).toHaveLength(3);
    expect(await keysUnder('jobs/.batchpilot-answers/seg/')).toHaveLength(3);

    // The first job's 50 questions under new ids, one body changed, plus 5 new questions.
    const rows = Array.from({ length: 50 }, (_, i) =>
      i === 7 ? request(`b-${i}`, i, { temperature: 0.3 }) : request(`b-${i}`, i),
    );
    for (let i = 50; i < 55; i++) rows.push(request(`b-${i}`, i));

    // `validate` on a machine with the fleet's storage settings counts from the bucket's store.
    const local = path.join(dir, 'second.jsonl');
    fs.writeFileSync(local, rows.join('\n') + '\n');
    const validate = (...flags: string[]) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        BATCHPILOT_STORAGE: `s3://${BUCKET}/jobs`,
        BATCHPILOT_SCRATCH_DIR: path.join(dir, 'scratch-cli'),
        BATCHPILOT_DATA_DIR: path.join(dir, 'cli-data'),
      };
      for (const k of ['BATCHPILOT_PROVIDER', 'BATCHPILOT_API_KEY', 'DASHSCOPE_API_KEY', 'OPENAI_API_KEY'])
        delete env[k];
      const r = spawnSync(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', BIN, 'validate', local, '--json', ...flags],
        {
          encoding: 'utf8',
          env,
        },
      );
      expect(r.status, r.stderr).toBe(0);
      return (
        JSON.parse(r.stdout) as {
          reused?: { lines: number; usageByModel: Record<string, { total_tokens: number }> };
        }
      ).reused;
    };
    const counted = validate();
    expect(counted?.lines).toBe(49);
    expect(counted?.usageByModel['qwen-plus']?.total_tokens).toBeGreaterThan(0);
    expect(validate('--reuse-from', `s3://${BUCKET}/jobs/out-first`)?.lines).toBe(49);
    expect(validate('--no-reuse')).toBeUndefined();

    const b = await worker('scratch-b');
    try {
      const second = await put('inputs/second.jsonl', rows);
      expect(await sentBy(b, () => b.runJob(second, 'out-second', { limits }, 's3-reuse-second'))).toBe(6);
      expect((await summaryOf('out-second')).lines).toEqual({
        total: 55,
        succeeded: 55,
        failed: 0,
        rejected: 0,
        reused: 49,
      });
      const firstAnswers = new Map((await results('out-first')).map((r) => [r.custom_id.slice(2), r]));
      const got = await results('out-second');
      expect(got.map((r) => r.custom_id)).toEqual(Array.from({ length: 55 }, (_, i) => `b-${i}`));
      for (const r of got) {
        const i = Number(r.custom_id.slice(2));
        const reused = i < 50 && i !== 7;
        expect(r.batchpilot_reused, r.custom_id).toBe(reused ? true : undefined);
        if (reused) expect(r.response).toEqual(firstAnswers.get(String(i))!.response);
      }
      // B mirrored the store into its scratch root; its step folders are gone.
      expect(fs.readdirSync(path.join(dir, 'scratch-b'))).toEqual(['answers-cache']);

      // --reuse-from an s3:// output prefix: that job's answers only (the 6 lines the second job
      // sent are not taken from it).
      const third = await put('inputs/third.jsonl', rows);
      const fromFirst = await sentBy(b, () =>
        b.runJob(
          third,
          'out-third',
          { limits, reuseFrom: `s3://${BUCKET}/jobs/out-first` },
          's3-reuse-third',
        ),
      );
      expect(fromFirst).toBe(6);
      expect((await summaryOf('out-third')).lines.reused).toBe(49);
      const refused = await b.runJob(third, 'out-from-nobody', { limits, reuseFrom: 'no-such-job' }).then(
        () => 'completed',
        (err: unknown) => String((err as { cause?: { cause?: { message?: string } } }).cause?.cause?.message),
      );
      expect(refused).toContain('no answers of job no-such-job are stored');
    } finally {
      await b.close();
    }
  });
});
