// The request keys the scan threads hand the planner with each line are the keys
// common/request-key.ts gives that line's bytes as they would be sent: on scan threads and inline,
// for lines rewritten by --thinking, and never for rejected or duplicate lines; and the planner
// takes exactly the lines the reuse hook says it answered. The stored answers the scan threads read
// are the right ones, a torn one is a miss, and --reuse-from reads only its job's.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_BYTES, providerScope, requestKey } from '../../common/request-key.ts';
import { planInputTuned, type LineReuse, type ReuseReport } from '../../planner/index.ts';
import { jobTag } from '../../storage/answers.ts';
import { LocalAnswerStore } from '../../storage/local-answers.ts';
import { roundFiles } from '../../storage/layout.ts';
import { decodeOutcome } from '../../storage/outcome-record.ts';
import { ReusedLines } from '../../storage/reused-lines.ts';
import { ENDPOINT, LIMITS, readPlan, tmpDir } from './helpers.ts';

const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const scope = providerScope('emulator', undefined);

/** Records what the planner hands over; takes the lines whose custom_id ends in "-r". */
class RecordingReuse implements LineReuse {
  readonly scope = scope;
  readonly seen: { line: number; key: string; customId: string; model: string }[] = [];

  take(line: number, key: Uint8Array, at: number, facts: { customId(): string; model(): string }): boolean {
    const customId = facts.customId();
    this.seen.push({
      line,
      key: Buffer.from(key.subarray(at, at + KEY_BYTES)).toString('hex'),
      customId,
      model: facts.model(),
    });
    return customId.endsWith('-r');
  }

  finish(): ReuseReport {
    return { lines: this.seen.filter((s) => s.customId.endsWith('-r')).length, usageByModel: {} };
  }
}

// Keys in varied order and spacing, unicode, numbers; one bad line and one duplicate id.
const bodies = Array.from({ length: 300 }, (_, i) => ({
  custom_id: `c${i}${i % 3 === 0 ? '-r' : ''}`,
  method: 'POST',
  url: ENDPOINT,
  body:
    i % 2 === 0
      ? { model: 'qwen-plus', messages: [{ role: 'user', content: `héllo ${i} "q"` }], temperature: 0.5 }
      : { temperature: 1.0, messages: [{ content: `x${i}`, role: 'user' }], model: 'qwen-turbo' },
}));
const input = path.join(work, 'in.jsonl');
fs.writeFileSync(
  input,
  [
    ...bodies.map((b, i) =>
      i % 5 === 0 ? JSON.stringify(b, null, 1).replace(/\n/g, ' ') : JSON.stringify(b),
    ),
    '{"custom_id":"bad","method":"POST"',
    JSON.stringify(bodies[1]), // duplicate custom_id: rejected, never offered
  ].join('\n') + '\n',
);

async function plan(workers: number, thinking?: 'on') {
  const reuse = new RecordingReuse();
  const outDir = tmpDir();
  const report = await planInputTuned(
    {
      input,
      outDir,
      endpoint: ENDPOINT,
      limits: LIMITS,
      reuse,
      ...(thinking ? { rewrite: { thinking } } : {}),
    },
    { workers, chunkBytes: 16 * 1024, partRecords: 16 },
  );
  const shards = readPlan(outDir).shards;
  fs.rmSync(outDir, { recursive: true, force: true });
  return { reuse, report, shards };
}

describe('request keys from the scan threads', () => {
  for (const workers of [0, 2]) {
    it(`are the keys of the lines as sent (${workers} scan threads)`, async () => {
      const { reuse, report, shards } = await plan(workers);
      expect(reuse.seen.map((s) => s.customId)).toEqual(bodies.map((b) => b.custom_id));
      for (const [i, s] of reuse.seen.entries()) {
        expect(s.key).toBe(requestKey(scope, bodies[i]!));
        expect(s.model).toBe(bodies[i]!.body.model);
        expect(s.line).toBe(i + 1);
      }
      expect(report.reused?.lines).toBe(100);
      expect(report.rejected).toBe(2);
      const sent = shards.flatMap((s) =>
        s.lines.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id),
      );
      expect(sent.sort()).toEqual(
        bodies
          .map((b) => b.custom_id)
          .filter((id) => !id.endsWith('-r'))
          .sort(),
      );
    });
  }

  it('are the keys of the rewritten lines with --thinking', async () => {
    const { reuse } = await plan(2, 'on');
    for (const [i, s] of reuse.seen.entries()) {
      const b = bodies[i]!;
      expect(s.key).toBe(requestKey(scope, { ...b, body: { ...b.body, enable_thinking: true } }));
      expect(s.key).not.toBe(requestKey(scope, b));
    }
  });
});

describe('stored answers read on the scan threads', () => {
  // An earlier job answered the even lines; job "other" answered lines 0-9 as well.
  const root = path.join(work, 'answers');
  const store = new LocalAnswerStore({ root });
  const resultOf = (id: string, job: string) =>
    Buffer.from(JSON.stringify({ id: `r-${id}`, custom_id: id, response: { body: { job } } }));
  const stored = (job: string, pick: (i: number) => boolean) => {
    const w = store.writer(job);
    for (const [i, b] of bodies.entries())
      if (pick(i))
        w.put(requestKey(scope, b), {
          model: b.body.model,
          usage: [1, 1, 2],
          customId: `old-${i}`,
          result: resultOf(`old-${i}`, job),
        });
    w.close();
  };
  beforeAll(async () => {
    stored('first', (i) => i % 2 === 0);
    await sleep(5); // a later segment: its answers win over the first job's
    stored('other', (i) => i < 10);
    await sleep(5);
    // A torn answer (a crash before its bytes reached the disk), the newest of line 2: read as a
    // miss, so line 2 is sent, though older jobs stored it whole.
    stored('torn', (i) => i === 2);
    const tag = jobTag('torn');
    const [seg] = fs.readdirSync(path.join(root, 'seg')).filter((n) => n.endsWith(tag));
    const tornFile = path.join(root, 'seg', seg!);
    fs.truncateSync(tornFile, fs.statSync(tornFile).size - 3);
  });

  async function planWithStore(workers: number, fromJob?: string) {
    const outDir = tmpDir();
    const reuse = new ReusedLines({ store: await store.prepare(fromJob), scope, dir: outDir });
    const report = await planInputTuned(
      { input, outDir, endpoint: ENDPOINT, limits: LIMITS, reuse },
      { workers, chunkBytes: 16 * 1024, partRecords: 16 },
    );
    const records = fs
      .readFileSync(roundFiles(outDir).reused(), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => decodeOutcome(l));
    const numbers = fs.readFileSync(roundFiles(outDir).reusedLines());
    fs.rmSync(outDir, { recursive: true, force: true });
    return { report, records, numbers };
  }

  for (const workers of [0, 2]) {
    it(`answer the stored lines, in order, under their new ids (${workers} scan threads)`, async () => {
      const { report, records, numbers } = await planWithStore(workers);
      // The newest answer of line 2 is torn: a miss, though older jobs stored it whole.
      const expected = bodies.map((_, i) => i).filter((i) => (i % 2 === 0 || i < 10) && i !== 2);
      expect(report.reused?.lines).toBe(expected.length);
      expect(records.map((r) => r.record.customId)).toEqual(expected.map((i) => bodies[i]!.custom_id));
      expect(Array.from({ length: numbers.length / 4 }, (_, k) => numbers.readUInt32LE(k * 4))).toEqual(
        expected.map((i) => i + 1),
      );
      for (const [k, r] of records.entries()) {
        const parsed = JSON.parse(r.result) as { custom_id: string; batchpilot_reused: boolean; id: string };
        expect(parsed.custom_id).toBe(bodies[expected[k]!]!.custom_id);
        expect(parsed.batchpilot_reused).toBe(true);
        expect(parsed.id).toBe(`r-old-${expected[k]}`); // the stored answer, not another's
      }
    });
  }

  it('with --reuse-from read only that job’s answers', async () => {
    const { report, records } = await planWithStore(2, 'other');
    const expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]; // line 2's copy under "other" is whole
    expect(report.reused?.lines).toBe(expected.length);
    for (const r of records)
      expect(JSON.parse(r.result)).toMatchObject({ response: { body: { job: 'other' } } });
  });
});
