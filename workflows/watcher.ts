// The batch watcher: one workflow per task queue that holds the batches in flight and, each sweep,
// reads all their states in one activity (⌈n / 100⌉ list calls), then signals only the shards whose
// batch changed status or passed a quarter of its lines. Shards register by signalWithStart.
//
// Races, and why none loses a batch:
// - A registration arriving while the watcher completes (its set empty past the idle wait) or
//   continues-as-new: the server refuses a completion while a signal is pending and runs the
//   workflow task again with the signal, so the set is not empty and the run goes on; one that
//   arrives after the run closed starts a new run (signalWithStart).
// - A batch that changed before its registration arrived: the registration carries what the shard
//   last saw, so the first sweep that lists the batch differently wakes it.
// - A watcher that is gone (terminated, its sweeps failing): each shard still reads its own batch
//   on a long fallback timer and registers again (workflows/shard-watch.ts).
import {
  ActivityFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { SweepResult } from '../activities/watch.ts';
import {
  SWEEP_PERIOD_MEMO,
  stillWatchedDue,
  watchFingerprint,
  type BatchWake,
  type WatchRegistration,
} from '../common/batch-watch.ts';
import { TERMINAL_STATUSES, nextPollDelay } from './poll.ts';
import { paced } from './shard-calls.ts';
import { batchWakeSignal, watchBatchSignal } from './watch-signals.ts';

export interface WatcherInput {
  taskQueue: string;
  /** Carried across continue-as-new. */
  watched?: WatchRegistration[];
}

/**
 * Watchers that tell shards their batch is still watched (sparing the shards' fallback reads) and
 * send their wakes in slices.
 */
const WAKES_PATCH = 'watcher-wakes';

/**
 * Watchers that time each sweep's cycle (its wait and its listing, not an idle wait), tell shards
 * that period so their fallback timers outlast it, and keep it in their memo, where a registering
 * shard reads it (activities/watch.ts).
 */
const PERIODS_PATCH = 'watcher-sweep-periods';

/**
 * Wakes sent by one workflow task. When most batches change at once (a wave of batches created
 * together moving to in_progress), a sweep wakes thousands of shards: one task issuing them all
 * outlasts the workflow task timeout on a loaded worker, and past 2,000 signals in flight the
 * server refuses the task (its pending-signal limit). A slice waits for its signals before the next.
 */
const WAKES_PER_TASK = 100;

/** How long a watcher with nothing to watch waits for a registration before it completes. */
const IDLE_MS = 10 * 60_000;

// A sweep that keeps failing is given up after a few attempts: the next sweep tries again, and
// every shard has its own fallback read meanwhile.
const sweeps = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 3 },
});

/** The sweep interval: the shortest fixed `--poll-interval` among the watched, else 60–120 s. */
function sweepDelay(watched: Map<string, WatchRegistration>): number {
  let fixed: number | undefined;
  for (const r of watched.values())
    if (r.pollIntervalMs !== undefined) fixed = Math.min(fixed ?? Infinity, r.pollIntervalMs);
  return nextPollDelay(fixed, Math.random);
}

export async function batchWatcher(input: WatcherInput): Promise<void> {
  const watched = new Map<string, WatchRegistration>();
  for (const r of input.watched ?? []) watched.set(r.batchId, r);
  // A shard registering again (after its fallback read) replaces its entry with what it now saw.
  setHandler(watchBatchSignal, (r) => void watched.set(r.batchId, { ...r, wokenAt: Date.now() }));

  // Workflow time of the last sweep's end: the period between sweeps sets how early a shard must be
  // told its batch is still watched.
  let sweptAt: number | undefined;
  // The period last written to the memo: rewritten only when it halves or doubles.
  let memoPeriod: number | undefined;
  for (;;) {
    if (watched.size === 0 && !(await condition(() => watched.size > 0, IDLE_MS))) return;
    const cycleStart = Date.now();
    await sleep(sweepDelay(watched), { summary: `sweep ${watched.size} batches` });
    if (watched.size === 0) continue;
    const batches = [...watched.values()].map((r) => ({
      id: r.batchId,
      fileId: r.fileId,
      createdAt: r.createdAt,
      seen: r.seen,
    }));
    let result;
    try {
      result = await sweeps.sweepBatches.executeWithOptions(
        { ...paced('sweepBatches'), summary: `list ${batches.length} batches` },
        [{ batches }],
      );
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      continue;
    }
    const periods = patched(WAKES_PATCH) && patched(PERIODS_PATCH);
    const period = Date.now() - cycleStart;
    const wakes: [WatchRegistration, BatchWake][] = [];
    // Every wake tells the period, and the registration keeps what its shard was told.
    const wake = (r: WatchRegistration, w: BatchWake) => {
      if (periods) r.sweepPeriodMs = period;
      wakes.push([r, periods ? { ...w, sweepPeriodMs: period } : w]);
    };
    if (result.listUnavailable) {
      for (const r of watched.values()) wake(r, { listUnavailable: true });
      watched.clear();
    }
    for (const view of result.changed) {
      const r = watched.get(view.id);
      if (!r) continue;
      r.seen = watchFingerprint(view);
      r.wokenAt = Date.now();
      if (TERMINAL_STATUSES.has(view.status)) watched.delete(view.id);
      wake(r, { view });
    }
    if (periods) {
      tellStillWatched(watched, result, wake, period, true);
      if (memoPeriod === undefined || period > 2 * memoPeriod || period < memoPeriod / 2) {
        upsertMemo({ [SWEEP_PERIOD_MEMO]: period });
        memoPeriod = period;
      }
      await sendWakes(wakes, watched, WAKES_PER_TASK);
    } else if (patched(WAKES_PATCH)) {
      const now = Date.now();
      tellStillWatched(watched, result, wake, sweptAt === undefined ? 0 : now - sweptAt, false);
      sweptAt = now;
      await sendWakes(wakes, watched, WAKES_PER_TASK);
    } else {
      await sendWakes(wakes, watched, Infinity);
    }
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof batchWatcher>({
        taskQueue: input.taskQueue,
        watched: [...watched.values()],
      });
    }
  }
}

/**
 * Wakes the shards whose batches this sweep listed unchanged and whose fallback read is near, so
 * that a batch the watcher sees costs no provider call of its own, however long it runs. A batch
 * the listing missed gets no such wake: its shard reads it, as it would with no watcher at all.
 */
function tellStillWatched(
  watched: Map<string, WatchRegistration>,
  result: SweepResult,
  wake: (r: WatchRegistration, w: BatchWake) => void,
  sweepPeriodMs: number,
  tellPeriod: boolean,
): void {
  if (result.listUnavailable) return;
  const notListed = new Set([...result.unseen, ...result.changed.map((v) => v.id)]);
  const now = Date.now();
  for (const r of watched.values()) {
    if (notListed.has(r.batchId) || !stillWatchedDue(r, now, sweepPeriodMs, tellPeriod)) continue;
    r.wokenAt = now;
    wake(r, { stillWatched: r.batchId });
  }
}

/**
 * Signals each shard its wake, `perTask` at a time. A shard that cannot be signalled ended or was
 * cancelled: nothing to wake, and nothing left to watch.
 */
async function sendWakes(
  wakes: [WatchRegistration, BatchWake][],
  watched: Map<string, WatchRegistration>,
  perTask: number,
): Promise<void> {
  for (let i = 0; i < wakes.length; i += perTask) {
    await Promise.all(
      wakes.slice(i, i + perTask).map(([r, w]) =>
        getExternalWorkflowHandle(r.workflowId)
          .signal(batchWakeSignal, w)
          .catch(() => void watched.delete(r.batchId)),
      ),
    );
  }
}
