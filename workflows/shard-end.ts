// How a shard ends: collected after its batch ends (or its Batch Chat activity returns), cancelled
// by the user with what finished kept, or failed with its provider files deleted all the same.
import { CancellationScope, isCancellation, sleep } from '@temporalio/workflow';
import type { BatchView, UnitResult, UnitStatus } from '../common/job-types.ts';
import { TERMINAL_STATUSES } from './poll.ts';
import type { UnitInput, UnitState } from './shard.ts';
import {
  chatOptions,
  collectOptions,
  deleteFiles,
  local,
  paced,
  provider,
  providerOptions,
} from './shard-calls.ts';

/**
 * The shard failed: its provider files go all the same (a failed shard must not leave its input at
 * the provider). The input of a batch still running stays, since the batch may still read it.
 */
export async function deleteAfterFailure(input: UnitInput, state: UnitState): Promise<void> {
  if (input.keepRemoteFiles) return;
  const b = state.batch;
  const running = b !== undefined && !TERMINAL_STATUSES.has(b.status);
  const ids = [running ? undefined : state.fileId, b?.outputFileId, b?.errorFileId].filter(
    (x): x is string => !!x,
  );
  // Deleting never fails the activity; a broken worker here must not hide the shard's own failure.
  if (ids.length > 0) await deleteFiles(ids).catch(() => 0);
}

/** Calls `fn` again while the provider stays unreachable; `fn` learns whether an outage is on. */
export type Persist = <T>(fn: (inOutage: boolean) => Promise<T>) => Promise<T>;

/** Batch Chat mode: one long activity answers every line (resuming from its own results file). */
export async function chatUnit(
  input: UnitInput,
  chat: { concurrency: number; qps: number },
  key: string,
  report: (s: UnitStatus) => Promise<void>,
  persist: Persist,
): Promise<UnitResult> {
  let cancelled = false;
  await report('in_progress');
  try {
    // An outage fails the activity with `ProviderUnreachableLong`. While it lasts, the activity runs
    // as a probe (one request at a time, back as soon as one line is answered) so that the job
    // hears the provider is back without waiting for the whole unit; then it runs in full, resuming
    // from its results file.
    for (;;) {
      const r = await persist((inOutage) =>
        local.chatUnit.executeWithOptions({ ...chatOptions, summary: `batch chat ${key}` }, [
          {
            workDir: input.workDir,
            unit: input.unit,
            ...chat,
            ...(inOutage ? { concurrency: 1, untilAnswered: true } : {}),
          },
        ]),
      );
      if (!r.stoppedEarly) break;
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancelled = true;
  }
  return CancellationScope.nonCancellable(async () => {
    await report('collecting');
    const counts = await local.collectUnit.executeWithOptions(
      { ...collectOptions, summary: `collect ${key}` },
      [
        {
          workDir: input.workDir,
          jobId: input.jobId,
          unit: input.unit,
          chat: true,
          cancelledByUs: cancelled,
          maxAttempts: input.maxAttempts,
        },
      ],
    );
    const status = cancelled ? 'cancelled' : 'completed';
    await report(cancelled ? 'cancelled' : 'done');
    return { unit: input.unit, batchId: null, batchStatus: status, ...counts, fileErrors: [] };
  });
}

/** The user cancelled: cancel the provider batch, wait for it to settle, keep what finished. */
export async function cancelAndCollect(
  input: UnitInput,
  key: string,
  state: UnitState,
  report: (s: UnitStatus) => Promise<void>,
  persist: Persist,
): Promise<UnitResult> {
  if (!state.batch && state.fileId) {
    const fileId = state.fileId;
    const found = await persist(() =>
      provider.findUnitBatch.executeWithOptions({ ...providerOptions, ...paced('findUnitBatch') }, [
        {
          key,
          fileId,
          notBefore: state.fileCreatedAt ?? input.notBefore,
          ...(state.refusedBatchIds ? { skipBatchIds: state.refusedBatchIds } : {}),
        },
      ]),
    );
    if (found) state.batch = found;
  }
  if (!state.batch) {
    await report('cancelled');
    if (state.fileId && !input.keepRemoteFiles) await deleteFiles([state.fileId]);
    // A job with a deadline sends these lines by Batch Chat next round: they need outcomes that say
    // the cancel stopped them (collecting with no batch records every line so).
    if (input.collectUnsentOnCancel) {
      const counts = await local.collectUnit.executeWithOptions(
        { ...collectOptions, summary: `collect ${key} (cancelled before its batch)` },
        [
          {
            workDir: input.workDir,
            jobId: input.jobId,
            unit: input.unit,
            cancelledByUs: true,
            maxAttempts: input.maxAttempts,
          },
        ],
      );
      return { unit: input.unit, batchId: null, batchStatus: null, ...counts, fileErrors: [] };
    }
    return {
      unit: input.unit,
      batchId: null,
      batchStatus: null,
      succeeded: 0,
      failed: 0,
      retry: 0,
      fileErrors: [],
    };
  }
  if (!TERMINAL_STATUSES.has(state.batch.status)) {
    const batchId = state.batch.id;
    state.batch = await persist<BatchView>(() =>
      provider.cancelBatch.executeWithOptions(
        { ...providerOptions, ...paced('cancelBatch'), summary: `cancel ${batchId}` },
        [batchId],
      ),
    );
  }
  while (!TERMINAL_STATUSES.has(state.batch.status)) {
    await sleep(Math.min(input.pollIntervalMs ?? 5000, 5000), {
      summary: `wait for ${state.batch.id} to cancel`,
    });
    const batchId: string = state.batch.id;
    state.batch = await persist<BatchView>(() =>
      provider.getBatch.executeWithOptions({ ...providerOptions, ...paced('getBatch') }, [batchId]),
    );
  }
  return finish(input, state, true, report, persist);
}

export async function finish(
  input: UnitInput,
  state: UnitState,
  cancelledByUs: boolean,
  report: (s: UnitStatus) => Promise<void>,
  persist: Persist,
): Promise<UnitResult> {
  const batch = state.batch!;
  await report('collecting');
  const counts = await persist(() =>
    local.collectUnit.executeWithOptions(
      { ...collectOptions, ...paced('collectUnit'), summary: `collect ${batch.id}` },
      [
        {
          workDir: input.workDir,
          jobId: input.jobId,
          unit: input.unit,
          batchId: batch.id,
          ended: { status: batch.status, outputFileId: batch.outputFileId, errorFileId: batch.errorFileId },
          cancelledByUs,
          maxAttempts: input.maxAttempts,
        },
      ],
    ),
  );
  if (!input.keepRemoteFiles) {
    const ids = [state.fileId, batch.outputFileId, batch.errorFileId].filter((x): x is string => !!x);
    await deleteFiles(ids);
  }
  await report(batch.status === 'completed' ? 'done' : batch.status);
  return {
    unit: input.unit,
    batchId: batch.id,
    batchStatus: batch.status,
    ...counts,
    fileErrors: batch.status === 'failed' ? batch.errors : [],
    ...(state.unavailableLookups?.length ? { unavailableLookups: state.unavailableLookups } : {}),
    ...(state.tokenLimitWaits ? { tokenLimitWaits: state.tokenLimitWaits } : {}),
  };
}
