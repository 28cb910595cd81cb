// Polling by listing: a task queue's batch watcher reads the state of every batch in flight with
// ⌈n / 100⌉ list calls a sweep and wakes only the shards whose batch changed, so a clean run makes
// no per-batch retrieve. A shard whose watcher is gone still ends through its fallback read, and a
// provider that cannot list keeps the per-batch poll.
import { afterEach, describe, expect, it } from 'vitest';
import { WAKE_SIGNAL, watcherWorkflowId, type BatchWake } from '../../common/batch-watch.ts';
import { FAST_FAULTS, startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';
import { startStranger, type Stranger } from '../support/stranger-server.ts';
import { sweepsOf } from '../support/watcher.ts';
import path from 'node:path';

const LIMITS = { maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

async function stopWatcher(h: Harness): Promise<void> {
  await h.client.workflow
    .getHandle(watcherWorkflowId(h.taskQueue))
    .terminate('test over')
    .catch(() => undefined);
}

/** The "still watched" wakes the job's shards received, from their histories. */
async function stillWatchedWakes(h: Harness): Promise<number> {
  let n = 0;
  for await (const wf of h.client.workflow.list({ query: `TaskQueue = "${h.taskQueue}"` })) {
    const history = await h.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    for (const e of history.events ?? []) {
      const a = e.workflowExecutionSignaledEventAttributes;
      if (a?.signalName !== WAKE_SIGNAL) continue;
      const wake = JSON.parse(Buffer.from(a.input!.payloads![0]!.data!).toString()) as BatchWake;
      if (wake.stillWatched) n++;
    }
  }
  return n;
}

describe('polling by listing', () => {
  let h: Harness | undefined;
  let stranger: Stranger | undefined;
  afterEach(async () => {
    if (h) await stopWatcher(h);
    await h?.close();
    await stranger?.close();
    h = undefined;
    stranger = undefined;
  });

  it(
    'lists ⌈n/100⌉ pages a sweep and makes no per-batch retrieve on a clean run',
    { timeout: 240_000 },
    async () => {
      const shards = 30;
      // Batches run ~6 s: long enough for several sweeps, far shorter than the fallback read
      // (120 poll intervals = 2 minutes).
      h = await startHarness({
        faults: { ...FAST_FAULTS, validatingMs: 3000, perLineMs: 500, finalizingMs: 1000 },
      });
      const input = writeChatInput(h.dataDir, 'in.jsonl', shards * 2);
      const summary = await h.runJob(input, 'out', {
        limits: { ...LIMITS, maxLines: 2 },
        pollIntervalMs: 1000,
      });
      expect(summary.status).toBe('completed');
      expect(summary.shards).toBe(shards);
      await expectInvariant(h, path.join(h.dataDir, 'out'), shards * 2);

      const stats = await h.stats();
      expect(stats.requests.retrieve ?? 0, 'no per-batch retrieve').toBe(0);
      const sweeps = await sweepsOf(h.client, watcherWorkflowId(h.taskQueue));
      console.log(
        'sweeps (batches watched, list calls, shards woken):',
        sweeps.map((s) => [s.watched, s.result.listCalls, s.result.changed.length]),
      );
      expect(sweeps.length, 'the watcher swept').toBeGreaterThanOrEqual(1);
      for (const { watched, result } of sweeps) {
        // One page of unfinished batches (≤ 100 a page), and the batches that ended since the last
        // sweep found by input_file_ids, 20 a call.
        const ended = result.changed.filter((v) =>
          ['completed', 'failed', 'expired', 'cancelled'].includes(v.status),
        ).length;
        expect(result.listCalls).toBeLessThanOrEqual(
          Math.ceil(watched / 100) + Math.ceil((ended + result.unseen.length) / 20),
        );
        expect(result.unseen).toEqual([]);
      }
      const sweepCalls = sweeps.reduce((a, s) => a + s.result.listCalls, 0);
      // Besides the sweeps, the worker's one batch lookup before its first create.
      expect(stats.requests.list).toBeLessThanOrEqual(sweepCalls + 1);
      expect(stats.requests.list).toBeGreaterThanOrEqual(sweepCalls);
    },
  );

  it(
    'a batch the watcher lists unchanged past several fallback intervals costs no retrieve',
    { timeout: 240_000 },
    async () => {
      const shards = 3;
      // Fallback after 120 intervals of 200 ms: 24 s. The batches stay validating for 60 s, two and
      // a half fallback intervals, unchanged in every sweep: without the watcher's "still watched"
      // wakes each shard would read its batch at least twice.
      h = await startHarness({ faults: { ...FAST_FAULTS, validatingMs: 60_000, finalizingMs: 500 } });
      const input = writeChatInput(h.dataDir, 'in.jsonl', shards * 2);
      const summary = await h.runJob(input, 'out', {
        limits: { ...LIMITS, maxLines: 2 },
        pollIntervalMs: 200,
      });
      expect(summary.status).toBe('completed');
      await expectInvariant(h, path.join(h.dataDir, 'out'), shards * 2);
      expect((await h.stats()).requests.retrieve ?? 0, 'no fallback read').toBe(0);
      const wakes = await stillWatchedWakes(h);
      expect(wakes, 'the shards were told their batches are still watched').toBeGreaterThanOrEqual(
        2 * shards,
      );
    },
  );

  it(
    'sweeps slower than the fallback interval still cost no retrieve: shards learn the sweep period',
    { timeout: 300_000 },
    async () => {
      // Fallback after 120 intervals of 50 ms: 6 s. Every list answers after 8 s (a stand-in in
      // front of the emulator), so a sweep takes longer than the fallback: without the sweep period,
      // each shard would read its batch before the watcher could say it is still watched.
      h = await startHarness({
        faults: { ...FAST_FAULTS, validatingMs: 25_000, finalizingMs: 500 },
        inProcessWorker: false,
      });
      stranger = await startStranger(h.emulator.url, { listDelayMs: 8000 });
      await h.startWorker(stranger.url);
      const opts = { limits: { ...LIMITS, maxLines: 2 }, pollIntervalMs: 50 };
      // A first job starts the watcher, whose first sweeps give it a period to tell.
      const first = writeChatInput(h.dataDir, 'first.jsonl', 2, ['qwen-plus'], 'first question');
      expect((await h.runJob(first, 'first', opts)).status).toBe('completed');
      const before = (await h.stats()).requests.retrieve ?? 0;

      const shards = 3;
      const input = writeChatInput(h.dataDir, 'in.jsonl', shards * 2);
      const summary = await h.runJob(input, 'out', opts);
      expect(summary.status).toBe('completed');
      await expectInvariant(h, path.join(h.dataDir, 'out'), shards * 2);
      const sweeps = await sweepsOf(h.client, watcherWorkflowId(h.taskQueue));
      expect(sweeps.length, 'the watcher swept').toBeGreaterThanOrEqual(2);
      expect((await h.stats()).requests.retrieve ?? 0, 'no fallback read in the second job').toBe(before);
    },
  );

  it('a shard whose watcher is gone ends through its fallback read', { timeout: 240_000 }, async () => {
    const shards = 3;
    h = await startHarness({ faults: { ...FAST_FAULTS, validatingMs: 8000, finalizingMs: 500 } });
    const input = writeChatInput(h.dataDir, 'in.jsonl', shards * 2);
    // Fallback after 120 intervals of 200 ms: 24 s.
    const done = h.runJob(input, 'out', { limits: { ...LIMITS, maxLines: 2 }, pollIntervalMs: 200 });
    const watcher = h.client.workflow.getHandle(watcherWorkflowId(h.taskQueue));
    // Once every shard has registered, the watcher is terminated before it can report anything.
    for (;;) {
      const events = await watcher
        .fetchHistory()
        .then((hs) => hs.events ?? [])
        .catch(() => []);
      if (events.filter((e) => e.workflowExecutionSignaledEventAttributes).length >= shards) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await watcher.terminate('lost watcher');
    const summary = await done;
    expect(summary.status).toBe('completed');
    await expectInvariant(h, path.join(h.dataDir, 'out'), shards * 2);
    const stats = await h.stats();
    expect(stats.requests.retrieve, 'each shard read its batch itself').toBeGreaterThanOrEqual(shards);
  });

  it('a provider without a batch list keeps the per-batch poll', { timeout: 240_000 }, async () => {
    h = await startHarness({ faults: { ...FAST_FAULTS, validatingMs: 2000 }, inProcessWorker: false });
    stranger = await startStranger(h.emulator.url);
    await h.startWorker(stranger.url);
    const input = writeChatInput(h.dataDir, 'in.jsonl', 6);
    const summary = await h.runJob(input, 'out', { limits: { ...LIMITS, maxLines: 2 }, pollIntervalMs: 200 });
    expect(summary.status).toBe('completed');
    await expectInvariant(h, path.join(h.dataDir, 'out'), 6);
    const stats = await h.stats();
    expect(stats.requests.retrieve, 'polled batch by batch').toBeGreaterThanOrEqual(3);
    await expect(h.client.workflow.getHandle(watcherWorkflowId(h.taskQueue)).describe()).rejects.toThrow();
  });

  it('shards go back to their own polls when the list route goes away', { timeout: 240_000 }, async () => {
    const shards = 4;
    h = await startHarness({ faults: { ...FAST_FAULTS, validatingMs: 6000 } });
    const input = writeChatInput(h.dataDir, 'in.jsonl', shards * 2);
    const done = h.runJob(input, 'out', { limits: { ...LIMITS, maxLines: 2 }, pollIntervalMs: 500 });
    const watcher = h.client.workflow.getHandle(watcherWorkflowId(h.taskQueue));
    for (;;) {
      const events = await watcher
        .fetchHistory()
        .then((hs) => hs.events ?? [])
        .catch(() => []);
      if (events.filter((e) => e.workflowExecutionSignaledEventAttributes).length >= shards) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // From now on the list route answers 404, as on a server without one.
    const res = await fetch(h.emulator.url.replace(/\/v1$/, '/_emulator/faults'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...FAST_FAULTS, validatingMs: 6000, quirks: ['no-list-routes'] }),
    });
    expect(res.ok).toBe(true);
    const summary = await done;
    expect(summary.status).toBe('completed');
    await expectInvariant(h, path.join(h.dataDir, 'out'), shards * 2);
    const sweeps = await sweepsOf(h.client, watcherWorkflowId(h.taskQueue));
    expect(sweeps.some((s) => s.result.listUnavailable)).toBe(true);
    // Fallback reads would come only after a minute: these are the shards' own polls.
    expect((await h.stats()).requests.retrieve).toBeGreaterThanOrEqual(shards);
  });
});
