// `--deadline` end to end against the emulator over HTTP: batches slower than the deadline are
// cancelled (keeping what they finished) and the rest is answered through Batch Chat in time; a
// generous deadline changes nothing; a deadline too close at start sends everything by chat.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JOB_WORKFLOW, PROGRESS_QUERY } from '../../common/definitions.ts';
import type { JobInput, JobProgress, JobSummary } from '../../common/job-types.ts';
import {
  FAST_FAULTS,
  jobOptions,
  readJsonl,
  startHarness,
  writeChatInput,
  type Harness,
} from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

type ResultLine = { id: string; custom_id: string };

/** Every line answered exactly once: the ids of results.jsonl, none twice, none missing. */
function expectEachOnce(out: string, lines: number): ResultLine[] {
  const results = readJsonl<ResultLine>(path.join(out, 'results.jsonl'));
  const ids = results.map((r) => r.custom_id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.sort()).toEqual(Array.from({ length: lines }, (_, i) => `req-${i}`).sort());
  expect(readJsonl(path.join(out, 'errors.jsonl'))).toEqual([]);
  return results;
}

describe('deadline', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it(
    'batches slower than the deadline are cancelled and the rest goes by Batch Chat, in time',
    { timeout: 400_000 },
    async () => {
      // 20 lines a shard at 3 s a line: each batch would take a minute; the deadline is 40 s.
      h = await startHarness({ faults: { ...FAST_FAULTS, perLineMs: 3000, chatDelayMs: 200 } });
      const lines = 60;
      const input = writeChatInput(h.dataDir, 'deadline.jsonl', lines);
      const id = `deadline-${Date.now()}`;
      const args: JobInput = {
        input,
        outDir: 'out-deadline',
        options: jobOptions({
          limits: { maxLines: 20, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
          maxInFlight: 2,
          deadline: { afterMs: 40_000 },
          chat: { concurrency: 8, qps: 50 },
          chatLatencyMs: 1000,
        }),
      };
      const handle = await h.client.workflow.start(JOB_WORKFLOW, {
        taskQueue: h.taskQueue,
        workflowId: id,
        args: [args],
      });
      // While the batches run, the progress (what `status` shows) has the deadline and the planned switch.
      let seen: JobProgress['deadline'];
      // Bounded by a long wait, not a count of queries: on a loaded machine each one is slow.
      const until = Date.now() + 120_000;
      while (!seen && Date.now() < until) {
        const p = await handle.query<JobProgress>(PROGRESS_QUERY);
        if (p.deadline && p.batchesCreated > 0) seen = p.deadline;
        else await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toBeDefined();
      expect(seen!.switchedAt).toBeNull();
      expect(Date.parse(seen!.plannedSwitchAt)).toBeLessThan(Date.parse(seen!.at));

      const summary = (await handle.result()) as JobSummary;
      expect(summary.status).toBe('completed');
      expect(summary.lines.succeeded).toBe(lines);
      const d = summary.deadline!;
      expect(d.reason).toBe('batches behind');
      expect(Date.parse(summary.finishedAt)).toBeLessThanOrEqual(Date.parse(d.at));
      expect(Date.parse(d.switchedAt!)).toBeLessThan(Date.parse(d.at));

      const out = path.join(h.dataDir, 'out-deadline');
      const results = expectEachOnce(out, lines);
      await expectInvariant(h, out, lines);
      // Lines answered by chat carry the chat envelope's id; the others came from the cancelled batches.
      const byChat = results.filter((r) => r.id.startsWith('chat_')).length;
      const byBatch = lines - byChat;
      const stats = await h.stats();
      expect(byBatch).toBeGreaterThan(0);
      expect(stats.requests.chat).toBe(byChat);
      expect(d.lines).toEqual({ viaBatch: byBatch, viaChat: byChat, sentByChat: byChat });
      // The batches running at the switch were cancelled; the third shard never became one.
      expect(stats.batchesCreated).toBeLessThanOrEqual(2);
      expect(d.batchesCancelled).toBeGreaterThan(0);
      expect(stats.requests.cancel).toBe(d.batchesCancelled);
    },
  );

  it('a generous deadline changes nothing: no chat request, batches answer every line', async () => {
    h = await startHarness();
    const lines = 30;
    const input = writeChatInput(h.dataDir, 'generous.jsonl', lines);
    const summary = await h.runJob(input, 'out-generous', {
      limits: { maxLines: 10, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
      deadline: { afterMs: 3_600_000 },
    });
    expect(summary.lines.succeeded).toBe(lines);
    expect(summary.deadline!.switchedAt).toBeNull();
    expect(summary.deadline!.lines).toEqual({ viaBatch: lines, viaChat: 0, sentByChat: 0 });
    const stats = await h.stats();
    expect(stats.requests.chat ?? 0).toBe(0);
    expect(stats.requests.cancel ?? 0).toBe(0);
    expect(stats.batchesCreated).toBe(3);
    expectEachOnce(path.join(h.dataDir, 'out-generous'), lines);
  });

  it('a deadline too close at start sends every line by Batch Chat and no batch', async () => {
    h = await startHarness({ faults: { ...FAST_FAULTS, chatDelayMs: 20 } });
    const lines = 30;
    const input = writeChatInput(h.dataDir, 'close.jsonl', lines);
    // At the assumed 30 s a request and 8 at once, 30 lines need about 2 minutes: more than 60 s.
    const summary = await h.runJob(input, 'out-close', {
      limits: { maxLines: 10, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
      deadline: { afterMs: 60_000 },
      chat: { concurrency: 8, qps: 50 },
      prices: { currency: 'USD', models: { 'qwen-plus': { input: 0.4, output: 1.2 } } },
    });
    expect(summary.lines.succeeded).toBe(lines);
    expect(summary.deadline!.reason).toBe('too close at start');
    expect(summary.deadline!.lines).toEqual({ viaBatch: 0, viaChat: lines, sentByChat: lines });
    // The switch's cost: these lines at the list price, less what they would have cost as batches.
    const cost = summary.deadline!.cost!;
    expect(cost.batch).toBeGreaterThan(0);
    expect(cost.chat).toBeCloseTo(2 * cost.batch, 6);
    expect(cost.extra).toBeCloseTo(cost.chat - cost.batch, 6);
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(0);
    expect(stats.requests.chat).toBe(lines);
    expectEachOnce(path.join(h.dataDir, 'out-close'), lines);
  });
});
