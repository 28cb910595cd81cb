// The request keys the scan threads hand the planner with each line are the keys
// common/request-key.ts gives that line's bytes as they would be sent: on scan threads and inline,
// for lines rewritten by --thinking, and never for rejected or duplicate lines; and the planner
// takes exactly the lines the reuse hook says it answered.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEY_BYTES, providerScope, requestKey } from '../../common/request-key.ts';
import { planInputTuned, type LineReuse, type ReuseReport } from '../../planner/index.ts';
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
