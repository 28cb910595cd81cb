// One unit's batch from upload to collected results: upload, create exactly one batch, poll with
// durable timers until it ends, collect and classify every line, delete the provider files.
// Continues-as-new when the history grows (a 24 h batch polled every ~90 s is ~1,000 polls).
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { BatchView } from '../common/job-types.ts';
import { unitKey } from '../common/keys.ts';
import { CALL_QUEUES, callQueueName, type PacedActivity } from '../common/rate-limits.ts';
import type {
  ProviderFailureDetails,
  ProviderLookup,
  ProviderUnreachable,
  Unit,
  UnitResult,
  UnitStatus,
  UnitUpdate,
} from '../common/job-types.ts';
import { unitUpdateSignal } from './messages.ts';
import { TERMINAL_STATUSES, nextPollDelay } from './poll.ts';
import {
  MAX_TOKEN_LIMIT_WAITS,
  createRefusedForTokens,
  refusedForTokens,
  tokenLimitDelay,
} from './token-limit.ts';

export interface ShardInput {
  jobId: string;
  workDir: string;
  unit: Unit;
  /** Epoch seconds of the job's start: bounds provider lookups. */
  notBefore: number;
  endpoint: string;
  completionWindow: string;
  pollIntervalMs?: number;
  maxAttempts: number;
  keepRemoteFiles: boolean;
  /** Re-send creates of unknown outcome where batches cannot be listed. */
  allowDuplicateBatches?: boolean;
  /** The unit's key was never used before (a new job, not a resumed one): see firstCall. */
  freshKey?: boolean;
  metadata: Record<string, string>;
  /** Batch Chat mode: lines go one by one through the synchronous API instead of a batch file. */
  chat?: { concurrency: number; qps: number };
  /** Carried across continue-as-new. */
  state?: ShardState;
}

export interface ShardState {
  fileId?: string;
  fileCreatedAt?: number;
  batch?: BatchView;
  polls: number;
  /** Provider lookups found unavailable (list routes missing). */
  unavailableLookups?: ProviderLookup[];
  /** Batches refused for the enqueued-token limit: not this unit's batch, whatever their key. */
  refusedBatchIds?: string[];
  /** Refusals waited out in a row (create answered token_limit_exceeded, or validation failed so). */
  tokenLimitWaits?: number;
}

/** Failure type an activity gives when the provider has been unreachable past the threshold. */
const UNREACHABLE_LONG = 'ProviderUnreachableLong';

/** The outage an activity failure reports, if it is `ProviderUnreachableLong`. */
function outageOf(err: unknown): ProviderFailureDetails | undefined {
  if (!(err instanceof ActivityFailure)) return undefined;
  const cause = err.cause;
  if (!(cause instanceof ApplicationFailure) || cause.type !== UNREACHABLE_LONG) return undefined;
  return (
    (cause.details?.[0] as ProviderFailureDetails | undefined) ?? {
      code: 'provider_unreachable',
      message: cause.message,
    }
  );
}

function addLookups(state: ShardState, found: ProviderLookup[] | undefined): void {
  for (const l of found ?? []) {
    state.unavailableLookups ??= [];
    if (!state.unavailableLookups.includes(l)) state.unavailableLookups.push(l);
  }
}

// Provider calls retry forever with capped backoff (a provider away for an hour is weather, not a
// failure); non-retryable failures (4xx) stop at once (activities/provider-errors.ts).
const providerOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m' },
} as const;
const uploadOptions = {
  startToCloseTimeout: '1h',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m' },
} as const;
const collectOptions = { ...uploadOptions, startToCloseTimeout: '4h' } as const;
// Batch Chat answers can take up to an hour each; the activity heartbeats every few seconds.
const chatOptions = { ...uploadOptions, startToCloseTimeout: '24h' } as const;

const provider = proxyActivities<Activities>(providerOptions);
const upload = proxyActivities<Activities>(uploadOptions);
const local = proxyActivities<Activities>(collectOptions);

const PROGRESS_QUARTERS = 'progress-quarters';
const CALL_CLASS_QUEUES = 'call-class-queues';

/**
 * The task queue of an activity's provider calls: `<queue>-calls-<class>`, whose workers set a
 * fleet-wide rate from the provider's published limit for that class (common/rate-limits.ts).
 * Runs recorded before these queues existed keep the workflow's own queue.
 */
function paced(activity: PacedActivity): { taskQueue?: string } {
  if (!patched(CALL_CLASS_QUEUES)) return {};
  return { taskQueue: callQueueName(workflowInfo().taskQueue, CALL_QUEUES[activity].queue) };
}

/** How many quarters of the batch's lines the provider reports answered (0-4). */
function answeredQuarter(b: BatchView): number {
  const { total, completed, failed } = b.requestCounts;
  return total > 0 ? Math.floor((4 * (completed + failed)) / total) : 0;
}

/** Runs one unit's batch and reports its line counts. */
export async function shardBatch(input: ShardInput): Promise<UnitResult> {
  const { unit } = input;
  const key = unitKey(input.jobId, unit.round, unit.index);
  const state: ShardState = input.state ?? { polls: 0 };
  const job = getExternalWorkflowHandle(input.jobId);
  let lastSent = '';
  let lastStatus: UnitStatus = 'uploading';
  let outage: ProviderUnreachable | undefined;
  const report = async (status: UnitStatus) => {
    lastStatus = status;
    const b = state.batch;
    const update: UnitUpdate = {
      unit,
      status,
      ...(b ? { batchId: b.id, requestCounts: b.requestCounts } : {}),
      ...(outage ? { unreachable: outage } : {}),
    };
    setCurrentDetails(
      `**${key}** — ${status}${b ? ` — batch \`${b.id}\` — ${b.requestCounts.completed + b.requestCounts.failed}/${b.requestCounts.total || unit.lines} lines` : ''}`,
    );
    // Signal on status changes, and when the provider's count of answered lines passes a quarter
    // of the batch: each signal is history in the job, so at most three more per batch keep the
    // job's progress moving while a long batch runs.
    const quarter = b && patched(PROGRESS_QUARTERS) ? answeredQuarter(b) : 0;
    const fingerprint = `${status}/${b?.id ?? ''}${outage ? '/unreachable' : ''}${quarter ? `/q${quarter}` : ''}`;
    if (fingerprint === lastSent) return;
    lastSent = fingerprint;
    await job.signal(unitUpdateSignal, update).catch(() => undefined);
  };

  // Whether this is the first call of its kind for a key no earlier run used: only then may the
  // activity skip its lookup (on its first attempt). A call made again (after an outage, or in a
  // run continued from an earlier one) may follow one whose answer was lost.
  const called = new Set<'upload' | 'create'>();
  const firstCall = (kind: 'upload' | 'create'): boolean => {
    const first = input.freshKey === true && !input.state && !called.has(kind);
    called.add(kind);
    return first;
  };

  // A provider unreachable past the worker's threshold fails the activity with its outage: the job
  // is told (progress and `status` say so) and the call is made again, for as long as it lasts.
  const persist = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        const r = await fn();
        if (outage) {
          outage = undefined;
          await report(lastStatus);
        }
        return r;
      } catch (err) {
        const d = outageOf(err);
        if (!d) throw err;
        outage ??= {
          url: d.baseUrl ?? 'the provider',
          since: d.unreachableSince ?? Date.now(),
          message: d.message,
        };
        await report(lastStatus);
      }
    }
  };

  if (!input.state) {
    // A re-run of this job (same id, after a failed merge) finds units it already collected.
    const prior = await local.collectedUnit({ workDir: input.workDir, unit });
    if (prior) {
      await report('done');
      return { unit, ...prior };
    }
  }
  if (input.chat) return chatUnit(input, input.chat, key, report);
  try {
    if (!state.fileId) {
      await report('uploading');
      const f = await persist(() =>
        upload.uploadUnit.executeWithOptions(
          { ...uploadOptions, ...paced('uploadUnit'), summary: `upload ${key}` },
          [
            {
              key,
              workDir: input.workDir,
              round: unit.round,
              index: unit.index,
              notBefore: input.notBefore,
              ...(firstCall('upload') ? { fresh: true } : {}),
            },
          ],
        ),
      );
      state.fileId = f.fileId;
      state.fileCreatedAt = f.createdAt;
      addLookups(state, f.unavailableLookups);
    }
    // Sends the unit's batch and polls it to its end; a batch the provider refuses for its
    // enqueued-token limit is waited out and sent again (workflows/token-limit.ts).
    for (;;) {
      if (!state.batch) {
        const fileId = state.fileId;
        try {
          state.batch = await persist<BatchView>(() =>
            provider.createBatch.executeWithOptions(
              { ...providerOptions, ...paced('createBatch'), summary: `create batch ${key}` },
              [
                {
                  key,
                  jobId: input.jobId,
                  fileId,
                  fileCreatedAt: state.fileCreatedAt ?? input.notBefore,
                  endpoint: input.endpoint,
                  completionWindow: input.completionWindow,
                  metadata: input.metadata,
                  ...(input.allowDuplicateBatches ? { allowDuplicateBatches: true } : {}),
                  workDir: input.workDir,
                  ...(firstCall('create') ? { fresh: true } : {}),
                  ...(state.refusedBatchIds ? { skipBatchIds: state.refusedBatchIds } : {}),
                },
              ],
            ),
          );
        } catch (err) {
          if (!createRefusedForTokens(err) || !canWaitForTokens(state)) throw err;
          await waitForTokens(input, state, undefined, report);
          continue;
        }
        addLookups(state, state.batch.unavailableLookups);
      }
      await report(state.batch.status);
      while (!TERMINAL_STATUSES.has(state.batch.status)) {
        const delay = nextPollDelay(input.pollIntervalMs, Math.random);
        await sleep(delay, { summary: `poll ${state.batch.id} in ${Math.round(delay / 1000)}s` });
        const batchId: string = state.batch.id;
        state.batch = await persist<BatchView>(() =>
          provider.getBatch.executeWithOptions(
            { ...providerOptions, ...paced('getBatch'), summary: `poll ${batchId}` },
            [batchId],
          ),
        );
        state.polls++;
        await report(state.batch.status);
        if (workflowInfo().continueAsNewSuggested && !TERMINAL_STATUSES.has(state.batch.status)) {
          await continueAsNew<typeof shardBatch>({ ...input, state });
        }
      }
      if (!refusedForTokens(state.batch) || !canWaitForTokens(state)) break;
      await waitForTokens(input, state, state.batch.id, report);
    }
    return await finish(input, state, false, report, persist);
  } catch (err) {
    if (!isCancellation(err)) {
      await CancellationScope.nonCancellable(() => deleteAfterFailure(input, state));
      throw err;
    }
    return await CancellationScope.nonCancellable(() => cancelAndCollect(input, key, state, report, persist));
  }
}

const TOKEN_LIMIT_WAIT = 'token-limit-wait';

/**
 * Whether a refusal for the enqueued-token limit is waited out: not past MAX_TOKEN_LIMIT_WAITS in a
 * row, and not in a run recorded before units waited (those failed the batch, and replay must too).
 */
function canWaitForTokens(state: ShardState): boolean {
  return (state.tokenLimitWaits ?? 0) < MAX_TOKEN_LIMIT_WAITS && patched(TOKEN_LIMIT_WAIT);
}

/** Notes the refused batch (if one was made), tells the job, and sleeps before sending again. */
async function waitForTokens(
  input: ShardInput,
  state: ShardState,
  refusedBatchId: string | undefined,
  report: (s: UnitStatus) => Promise<void>,
): Promise<void> {
  if (refusedBatchId) state.refusedBatchIds = [...(state.refusedBatchIds ?? []), refusedBatchId];
  state.tokenLimitWaits = (state.tokenLimitWaits ?? 0) + 1;
  delete state.batch;
  await report('waiting');
  const delay = tokenLimitDelay(nextPollDelay(input.pollIntervalMs, Math.random), state.tokenLimitWaits);
  await sleep(delay, {
    summary: `enqueued-token limit: send again in ${Math.round(delay / 1000)}s (wait ${state.tokenLimitWaits} of at most ${MAX_TOKEN_LIMIT_WAITS})`,
  });
}

/**
 * The shard failed: its provider files go all the same (a failed shard must not leave its input at
 * the provider). The input of a batch still running stays, since the batch may still read it.
 */
async function deleteAfterFailure(input: ShardInput, state: ShardState): Promise<void> {
  if (input.keepRemoteFiles) return;
  const b = state.batch;
  const running = b !== undefined && !TERMINAL_STATUSES.has(b.status);
  const ids = [running ? undefined : state.fileId, b?.outputFileId, b?.errorFileId].filter(
    (x): x is string => !!x,
  );
  // Deleting never fails the activity; a broken worker here must not hide the shard's own failure.
  if (ids.length > 0) await deleteFiles(ids).catch(() => 0);
}

/** Deletes provider files (never fails but for throttling, which it retries). */
function deleteFiles(ids: string[]): Promise<number> {
  return provider.deleteRemoteFiles.executeWithOptions(
    { ...providerOptions, ...paced('deleteRemoteFiles') },
    [ids],
  );
}

type Persist = <T>(fn: () => Promise<T>) => Promise<T>;

/** Batch Chat mode: one long activity answers every line (resuming from its own results file). */
async function chatUnit(
  input: ShardInput,
  chat: { concurrency: number; qps: number },
  key: string,
  report: (s: UnitStatus) => Promise<void>,
): Promise<UnitResult> {
  let cancelled = false;
  await report('in_progress');
  try {
    await local.chatUnit.executeWithOptions({ ...chatOptions, summary: `batch chat ${key}` }, [
      { workDir: input.workDir, unit: input.unit, ...chat },
    ]);
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
async function cancelAndCollect(
  input: ShardInput,
  key: string,
  state: ShardState,
  report: (s: UnitStatus) => Promise<void>,
  persist: Persist,
): Promise<UnitResult> {
  if (!state.batch && state.fileId) {
    const found = await provider.findUnitBatch.executeWithOptions(
      { ...providerOptions, ...paced('findUnitBatch') },
      [
        {
          key,
          fileId: state.fileId,
          notBefore: state.fileCreatedAt ?? input.notBefore,
          ...(state.refusedBatchIds ? { skipBatchIds: state.refusedBatchIds } : {}),
        },
      ],
    );
    if (found) state.batch = found;
  }
  if (!state.batch) {
    await report('cancelled');
    if (state.fileId && !input.keepRemoteFiles) await deleteFiles([state.fileId]);
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
    state.batch = await provider.cancelBatch.executeWithOptions(
      { ...providerOptions, ...paced('cancelBatch'), summary: `cancel ${state.batch.id}` },
      [state.batch.id],
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

async function finish(
  input: ShardInput,
  state: ShardState,
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
