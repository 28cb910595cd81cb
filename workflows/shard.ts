// One unit's batch from upload to collected results: upload, create exactly one batch, poll with
// durable timers until it ends (or be woken by the task queue's batch watcher, which polls by
// listing), collect and classify every line, delete the provider files. Continues-as-new when the
// history grows (a 24 h batch polled every ~90 s is ~1,000 polls).
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  setCurrentDetails,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { BatchView } from '../common/job-types.ts';
import { answeredQuarter } from '../common/batch-watch.ts';
import { unitKey } from '../common/keys.ts';
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
import { createRefusedForTokens, refusedForTokens } from './token-limit.ts';
import { local, paced, provider, providerOptions, upload, uploadOptions } from './shard-calls.ts';
import { cancelAndCollect, chatUnit, deleteAfterFailure, finish } from './shard-end.ts';
import { canWaitForTokens, waitForTokens } from './shard-token-wait.ts';
import { canPollByList, watchUntilEnd } from './shard-watch.ts';

export interface UnitInput {
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
  /**
   * Report the end to the job by signal too (result or failure): the job may have continued-as-new
   * since it started this shard, and a later run does not see this workflow's close.
   */
  reportResult?: boolean;
  /**
   * A cancel that comes before the unit's batch exists still records its lines (as stopped by the
   * cancel), so that the job can send them another way: set for jobs with a deadline.
   */
  collectUnsentOnCancel?: boolean;
  /** Batch Chat mode: lines go one by one through the synchronous API instead of a batch file. */
  chat?: { concurrency: number; qps: number };
  /** Carried across continue-as-new. */
  state?: UnitState;
}

export interface UnitState {
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

function addLookups(state: UnitState, found: ProviderLookup[] | undefined): void {
  for (const l of found ?? []) {
    state.unavailableLookups ??= [];
    if (!state.unavailableLookups.includes(l)) state.unavailableLookups.push(l);
  }
}

const PROGRESS_QUARTERS = 'progress-quarters';

/** Polling by listing (workflows/watcher.ts): histories recorded before it keep the per-batch loop. */
const POLL_BY_LIST = 'poll-by-list';

/**
 * Runs one unit's batch and returns its line counts (the `shardBatch` workflow, shard-report.ts).
 * Longer than most functions here: `report` and `persist` share the unit's last status and outage,
 * and the upload, create and poll steps share them; splitting them apart would change no command
 * but would thread that state through each.
 */
export async function runUnit(input: UnitInput): Promise<UnitResult> {
  const { unit } = input;
  const key = unitKey(input.jobId, unit.round, unit.index);
  const state: UnitState = input.state ?? { polls: 0 };
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
  const persist = async <T>(fn: (inOutage: boolean) => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        const r = await fn(outage !== undefined);
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
  if (input.chat) return chatUnit(input, input.chat, key, report, persist);
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
      // The watcher polls by listing where the provider can list; the loop below polls this batch
      // alone where it cannot (or once the watcher finds it cannot).
      if (!TERMINAL_STATUSES.has(state.batch.status) && canPollByList(state) && patched(POLL_BY_LIST)) {
        await watchUntilEnd(input, state, report, persist);
      }
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
          await continueAsNew<typeof runUnit>({ ...input, state });
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
