// Answers reused across jobs, end to end over the real dev server and the emulator: a re-run whose
// input gained new lines sends only those; a changed body is sent again while key order and
// whitespace are not; --no-reuse sends everything and stores nothing; --reuse-from takes only the
// named job's answers. Every input line still ends in exactly one output, in input order.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobSummary } from '../../common/job-types.ts';
import { ANSWERS_DIR_NAME } from '../../storage/answers.ts';
import { LocalAnswerStore } from '../../storage/local-answers.ts';
import { FAST_FAULTS, readJsonl, startHarness, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

const limits = { maxLines: 20, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };
const prices = { currency: 'USD', models: { 'qwen-plus': { input: 0.4, output: 1.2 } } };

interface Result {
  custom_id: string;
  batchpilot_reused?: boolean;
  response: { body: { choices: { message: { content: string } }[] } };
}

const request = (id: string, i: number, extra: Record<string, unknown> = {}) => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'qwen-plus', messages: [{ role: 'user', content: `question ${i}` }], ...extra },
});

/** The first job's 50 questions under new ids, a few written differently, one changed, 5 new. */
function secondInput(): string[] {
  const rows: string[] = [];
  for (let i = 0; i < 50; i++) {
    if (i === 7)
      rows.push(JSON.stringify(request(`b-${i}`, i, { temperature: 0.3 }))); // changed body
    else if (i % 10 === 3) {
      // Same request, keys in another order and spaced out: still the same question.
      rows.push(
        `{ "body" : { "messages" : [ { "content" : "question ${i}", "role" : "user" } ], "model" : "qwen-plus" },  "url": "/v1/chat/completions", "method": "POST", "custom_id": "b-${i}" }`,
      );
    } else rows.push(JSON.stringify(request(`b-${i}`, i)));
  }
  for (let i = 50; i < 55; i++) rows.push(JSON.stringify(request(`b-${i}`, i)));
  return rows;
}

describe('answers reused across jobs', () => {
  let h: Harness;
  const write = (name: string, rows: string[]) => {
    fs.writeFileSync(path.join(h.dataDir, name), rows.join('\n') + '\n');
    return name;
  };
  const sentBy = async (run: () => Promise<unknown>) => {
    const before = (await h.stats()).linesInBatches;
    await run();
    return (await h.stats()).linesInBatches - before;
  };
  const results = (out: string) => readJsonl<Result>(path.join(h.dataDir, out, 'results.jsonl'));
  const summaryOf = (out: string) =>
    JSON.parse(fs.readFileSync(path.join(h.dataDir, out, 'summary.json'), 'utf8')) as JobSummary &
      Required<Pick<JobSummary, 'saved'>> & { saved: { cost: { total: number } } };

  beforeAll(async () => {
    h = await startHarness({ faults: FAST_FAULTS, answers: true });
  });
  afterAll(async () => {
    await h.close();
  });

  it('a re-run sends only new and changed lines; the rest are the first answers, marked reused', async () => {
    const first = write(
      'first.jsonl',
      Array.from({ length: 50 }, (_, i) => JSON.stringify(request(`a-${i}`, i))),
    );
    expect(await sentBy(() => h.runJob(first, 'out-first', { limits }, 'reuse-first'))).toBe(50);
    expect(summaryOf('out-first').lines).toEqual({
      total: 50,
      succeeded: 50,
      failed: 0,
      rejected: 0,
      reused: 0,
    });

    const second = write('second.jsonl', secondInput());
    const sent = await sentBy(() => h.runJob(second, 'out-second', { limits, prices }, 'reuse-second'));
    expect(sent).toBe(6); // 5 new lines and the changed one
    const summary = summaryOf('out-second');
    expect(summary.lines).toEqual({ total: 55, succeeded: 55, failed: 0, rejected: 0, reused: 49 });
    expect(summary.saved.usage.total_tokens).toBeGreaterThan(0);
    expect(summary.saved.cost.total).toBeGreaterThan(0);
    // Tokens spent are the 6 sent lines' only.
    expect(summary.usage.total_tokens).toBeLessThan(summary.saved.usage.total_tokens);
    await expectInvariant(h, path.join(h.dataDir, 'out-second'), 55);

    const firstAnswers = new Map(results('out-first').map((r) => [r.custom_id.slice(2), r]));
    const got = results('out-second');
    expect(got.map((r) => r.custom_id)).toEqual(Array.from({ length: 55 }, (_, i) => `b-${i}`));
    for (const r of got) {
      const i = Number(r.custom_id.slice(2));
      const reused = i < 50 && i !== 7;
      expect(r.batchpilot_reused, r.custom_id).toBe(reused ? true : undefined);
      if (reused) expect(r.response).toEqual(firstAnswers.get(String(i))!.response); // the provider's body untouched
    }
  });

  it('--no-reuse sends every line and stores none of its answers', async () => {
    const input = write('third.jsonl', secondInput());
    expect(await sentBy(() => h.runJob(input, 'out-no-reuse', { limits, reuse: false }, 'reuse-off'))).toBe(
      55,
    );
    const summary = summaryOf('out-no-reuse');
    expect(summary.lines).toEqual({ total: 55, succeeded: 55, failed: 0, rejected: 0 });
    expect(results('out-no-reuse').some((r) => r.batchpilot_reused)).toBe(false);
    expect(new LocalAnswerStore({ root: path.join(h.dataDir, ANSWERS_DIR_NAME) }).hasJob('reuse-off')).toBe(
      false,
    );
  });

  it('--reuse-from takes only the named job’s answers (by output folder or by id)', async () => {
    const input = write('fourth.jsonl', secondInput());
    // The first job answered 49 of these; the second stored the other 6, which are not taken.
    const fromFolder = await sentBy(() =>
      h.runJob(input, 'out-from-folder', { limits, reuseFrom: 'out-first' }, 'reuse-from-folder'),
    );
    expect(fromFolder).toBe(6);
    expect(summaryOf('out-from-folder').lines.reused).toBe(49);
    // The second job stored only what it sent: the 5 new lines and the changed one.
    const fromId = await sentBy(() =>
      h.runJob(input, 'out-from-id', { limits, reuseFrom: 'reuse-second' }, 'reuse-from-id'),
    );
    expect(fromId).toBe(49);
    expect(summaryOf('out-from-id').lines.reused).toBe(6);
    await expectInvariant(h, path.join(h.dataDir, 'out-from-id'), 55);
    const refused = await h.runJob(input, 'out-from-nobody', { limits, reuseFrom: 'no-such-job' }).then(
      () => 'completed',
      (err: unknown) => String((err as { cause?: { cause?: { message?: string } } }).cause?.cause?.message),
    );
    expect(refused).toContain('no answers of job no-such-job are stored');
  });
});
