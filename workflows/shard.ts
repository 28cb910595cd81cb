// One unit's batch from upload to collected results: upload, create exactly one batch, poll with
// durable timers until it ends, collect and classify every line, delete the provider files.
// Continues-as-new when the history grows (a 24 h batch polled every ~90 s is ~1,000 polls).
import {
  CancellationScope,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { BatchView } from '../activities/batches.ts';
import { unitKey } from '../common/keys.ts';
import type { Unit, UnitResult, UnitStatus, UnitUpdate } from '../common/job-types.ts';
import { unitUpdateSignal } from './messages.ts';
import { TERMINAL_STATUSES, nextPollDelay } from './poll.ts';

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

/** Runs one unit's batch and reports its line counts. */
export async function shardBatch(input: ShardInput): Promise<UnitResult> {
  const { unit } = input;
  const key = unitKey(input.jobId, unit.round, unit.index);
  const state: ShardState = input.state ?? { polls: 0 };
  const job = getExternalWorkflowHandle(input.jobId);
  let lastSent = '';
  const report = async (status: UnitStatus) => {
    const b = state.batch;
    const update: UnitUpdate = {
      unit,
      status,
      ...(b ? { batchId: b.id, requestCounts: b.requestCounts } : {}),
    };
    setCurrentDetails(
      `**${key}** — ${status}${b ? ` — batch \`${b.id}\` — ${b.requestCounts.completed + b.requestCounts.failed}/${b.requestCounts.total || unit.lines} lines` : ''}`,
    );
    // Signal on status changes only: each signal is history in the job, which cannot
    // continue-as-new while this child runs; live line counts are in this workflow's details.
    const fingerprint = `${status}/${b?.id ?? ''}`;
    if (fingerprint === lastSent) return;
    lastSent = fingerprint;
    await job.signal(unitUpdateSignal, update).catch(() => undefined);
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
      const f = await upload.uploadUnit.executeWithOptions({ ...uploadOptions, summary: `upload ${key}` }, [
        { key, workDir: input.workDir, round: unit.round, index: unit.index, notBefore: input.notBefore },
      ]);
      state.fileId = f.fileId;
      state.fileCreatedAt = f.createdAt;
    }
    if (!state.batch) {
      state.batch = await provider.createBatch.executeWithOptions(
        { ...providerOptions, summary: `create batch ${key}` },
        [
          {
            key,
            jobId: input.jobId,
            fileId: state.fileId,
            fileCreatedAt: state.fileCreatedAt ?? input.notBefore,
            endpoint: input.endpoint,
            completionWindow: input.completionWindow,
            metadata: input.metadata,
          },
        ],
      );
    }
    await report(state.batch.status as UnitStatus);
    while (!TERMINAL_STATUSES.has(state.batch.status)) {
      const delay = nextPollDelay(input.pollIntervalMs, Math.random);
      await sleep(delay, { summary: `poll ${state.batch.id} in ${Math.round(delay / 1000)}s` });
      state.batch = await provider.getBatch.executeWithOptions(
        { ...providerOptions, summary: `poll ${state.batch.id}` },
        [state.batch.id],
      );
      state.polls++;
      await report(state.batch.status as UnitStatus);
      if (workflowInfo().continueAsNewSuggested && !TERMINAL_STATUSES.has(state.batch.status)) {
        await continueAsNew<typeof shardBatch>({ ...input, state });
      }
    }
    return await finish(input, state, false, report);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    return await CancellationScope.nonCancellable(() => cancelAndCollect(input, key, state, report));
  }
}

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
): Promise<UnitResult> {
  if (!state.batch && state.fileId) {
    const found = await provider.findUnitBatch({
      key,
      fileId: state.fileId,
      notBefore: state.fileCreatedAt ?? input.notBefore,
    });
    if (found) state.batch = found;
  }
  if (!state.batch) {
    await report('cancelled');
    if (state.fileId && !input.keepRemoteFiles) await provider.deleteRemoteFiles([state.fileId]);
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
      { ...providerOptions, summary: `cancel ${state.batch.id}` },
      [state.batch.id],
    );
  }
  while (!TERMINAL_STATUSES.has(state.batch.status)) {
    await sleep(Math.min(input.pollIntervalMs ?? 5000, 5000), {
      summary: `wait for ${state.batch.id} to cancel`,
    });
    state.batch = await provider.getBatch(state.batch.id);
  }
  return finish(input, state, true, report);
}

async function finish(
  input: ShardInput,
  state: ShardState,
  cancelledByUs: boolean,
  report: (s: UnitStatus) => Promise<void>,
): Promise<UnitResult> {
  const batch = state.batch!;
  await report('collecting');
  const counts = await local.collectUnit.executeWithOptions(
    { ...collectOptions, summary: `collect ${batch.id}` },
    [
      {
        workDir: input.workDir,
        jobId: input.jobId,
        unit: input.unit,
        batchId: batch.id,
        cancelledByUs,
        maxAttempts: input.maxAttempts,
      },
    ],
  );
  if (!input.keepRemoteFiles) {
    const ids = [state.fileId, batch.outputFileId, batch.errorFileId].filter((x): x is string => !!x);
    await provider.deleteRemoteFiles(ids);
  }
  await report(batch.status === 'completed' ? 'done' : (batch.status as UnitStatus));
  return {
    unit: input.unit,
    batchId: batch.id,
    batchStatus: batch.status,
    ...counts,
    fileErrors: batch.status === 'failed' ? batch.errors : [],
  };
}
