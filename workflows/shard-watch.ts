// A shard waiting for its batch to end while the task queue's watcher polls it by listing
// (workflows/watcher.ts): the shard registers its batch, then sleeps until the watcher wakes it
// with a changed state, reading the batch itself only on a long fallback timer, so that a watcher
// that is lost never leaves it waiting and a 24 h batch costs a few dozen actions, not thousands.
import { condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { fallbackDelay, watchFingerprint } from '../common/batch-watch.ts';
import type { BatchView, UnitStatus } from '../common/job-types.ts';
import { TERMINAL_STATUSES } from './poll.ts';
import { paced, provider, providerOptions } from './shard-calls.ts';
import type { UnitInput, UnitState, runUnit } from './shard.ts';
import { batchWakeSignal } from './watch-signals.ts';

const registrations = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m' },
});

/**
 * Whether this shard's batch can be polled by listing: the provider answered its batch list (a
 * missing list route is recorded by the create call as an unavailable lookup).
 */
export function canPollByList(state: UnitState): boolean {
  return !(state.unavailableLookups ?? []).includes('GET /batches');
}

/**
 * Waits for the batch in `state` to end, woken by the watcher. Returns when it ended, or early
 * (batch not ended) when the watcher says the provider cannot list: the caller then polls itself.
 */
export async function watchUntilEnd(
  input: UnitInput,
  state: UnitState,
  report: (status: UnitStatus) => Promise<void>,
  persist: <T>(fn: (inOutage: boolean) => Promise<T>) => Promise<T>,
): Promise<void> {
  let woken: BatchView | undefined;
  let listUnavailable = false;
  let stillWatched = false;
  // The watcher's sweep period, as it last said (its memo at registration, then its wakes): the
  // fallback timer outlasts a few of them, so that a slow sweep reaches the shard before it fires.
  let sweepPeriodMs: number | undefined;
  setHandler(batchWakeSignal, (w) => {
    if (w.sweepPeriodMs !== undefined) sweepPeriodMs = w.sweepPeriodMs;
    if (w.listUnavailable) listUnavailable = true;
    else if (w.view && w.view.id === state.batch?.id) woken = w.view;
    else if (w.stillWatched !== undefined && w.stillWatched === state.batch?.id) stillWatched = true;
  });
  let register = true;
  while (state.batch && !TERMINAL_STATUSES.has(state.batch.status)) {
    const batch: BatchView = state.batch;
    if (register) {
      const told = await registrations.registerWatch.executeWithOptions({ summary: `watch ${batch.id}` }, [
        {
          taskQueue: workflowInfo().taskQueue,
          registration: {
            batchId: batch.id,
            fileId: state.fileId!,
            createdAt: state.fileCreatedAt ?? input.notBefore,
            workflowId: workflowInfo().workflowId,
            seen: watchFingerprint(batch),
            ...(input.pollIntervalMs !== undefined ? { pollIntervalMs: input.pollIntervalMs } : {}),
          },
        },
      ]);
      // Histories recorded before registrations answered have no result here.
      if (told?.sweepPeriodMs !== undefined) sweepPeriodMs = told.sweepPeriodMs;
      register = false;
    }
    await condition(
      () => woken !== undefined || listUnavailable || stillWatched,
      fallbackDelay(input.pollIntervalMs, sweepPeriodMs),
    );
    if (listUnavailable) return;
    if (stillWatched && !woken) {
      // The watcher listed the batch unchanged just now: no need to read it, only to wait again.
      stillWatched = false;
      if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof runUnit>({ ...input, state });
      continue;
    }
    stillWatched = false;
    if (woken) {
      state.batch = woken;
      woken = undefined;
    } else {
      state.batch = await persist<BatchView>(() =>
        provider.getBatch.executeWithOptions(
          { ...providerOptions, ...paced('getBatch'), summary: `fallback read of ${batch.id}` },
          [batch.id],
        ),
      );
      // A change the watcher did not report means it is not watching (gone, or restarted
      // without this batch): register again. An unchanged batch proves nothing either way,
      // and registering costs an action, so it is left.
      register = watchFingerprint(state.batch) !== watchFingerprint(batch);
    }
    state.polls++;
    await report(state.batch.status);
    if (workflowInfo().continueAsNewSuggested && !TERMINAL_STATUSES.has(state.batch.status)) {
      await continueAsNew<typeof runUnit>({ ...input, state });
    }
  }
}
