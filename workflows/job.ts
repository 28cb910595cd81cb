// The job: plan the input, run one shard workflow per unit through a bounded window, resubmit
// retryable lines in packed rounds, merge everything into the outputs. Only references cross into
// history (paths, counts, ids); continues-as-new between children when the history grows.
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  continueAsNew,
  executeChild,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { Activities } from '../activities/index.ts';
import { SEARCH_ATTRIBUTES } from '../common/definitions.ts';
import type {
  FailureInfo,
  JobInput,
  JobProgress,
  JobSummary,
  MergeSummary,
  PlanSummary,
  ProviderLookup,
  ShardProgress,
  UnitResult,
} from '../common/job-types.ts';
import { CHAT_DEFAULTS, jobInputProblem } from '../common/job-types.ts';
import { unitWorkflowId } from '../common/keys.ts';
import { costOf, type PriceTable, type Usage } from '../common/pricing.ts';
import { lookupMeaning } from '../common/provider-lookups.ts';
import { DRY_RUN } from '../common/profiles.ts';
import { hasTemplate, resolveTemplate } from '../common/templates.ts';
import type { UnitTokens } from '../common/tokens.ts';
import { batchFailureCodes, batchFailureInfos, failureFromError, unitName } from './failures.ts';
import { progressQuery, unitUpdateSignal } from './messages.ts';
import { progressTable } from './progress.ts';
import { shardBatch, type ShardInput } from './shard.ts';
import { EnqueuedTokens } from './token-limit.ts';

// Local file work (plan, retry packing, merge) heartbeats; a disk that stays broken fails the job
// after 20 attempts with the activity's message rather than retrying all night.
const planOptions = {
  startToCloseTimeout: '6h',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 20 },
} as const;
const longLocal = proxyActivities<Activities>(planOptions);

/** Everything the job carries across continue-as-new: small, references only. */
export interface JobState {
  startedAt: string;
  notBefore: number;
  plan?: PlanSummary;
  round: number;
  units: ShardProgress[];
  batches: number;
  /** Lines settled in earlier rounds (the current round's units hold the rest). */
  settled: { succeeded: number; failed: number };
  /** Failed batches, one entry per batch (counted by code in the summary). */
  batchFailures: { round: number; shard: number; batchId: string | null; codes?: string[] }[];
  childFailures: string[];
  cancelled: boolean;
  /** Why things failed, structured (absent in states carried from older runs). */
  failures?: FailureInfo[];
  /** Round-1 shards that failed, by index: the reason their unsubmitted lines carry. */
  shardFailures?: Record<string, FailureInfo>;
  unavailableLookups?: ProviderLookup[];
  /** Batches refused for the enqueued-token limit that units waited out and sent again. */
  tokenLimitWaits?: number;
}

/** Failures kept in state and the summary: enough to act on, bounded for history's sake. */
const MAX_FAILURES = 50;

function addFailure(state: JobState, f: FailureInfo): void {
  state.failures ??= [];
  if (state.failures.length < MAX_FAILURES) state.failures.push(f);
}

/** A round's units, all pending; `tokens` (model and estimate per unit) where known. */
function freshUnits(round: number, lines: number[], tokens?: UnitTokens[]): ShardProgress[] {
  return lines.map((n, index) => {
    const t = tokens?.[index];
    return {
      round,
      index,
      status: 'pending',
      batchId: null,
      lines: n,
      completed: 0,
      succeeded: 0,
      failed: 0,
      retry: 0,
      ...(t?.model ? { model: t.model, tokens: t.tokens } : {}),
    };
  });
}

const scheduledStartTime = defineSearchAttributeKey(
  'TemporalScheduledStartTime',
  SearchAttributeType.DATETIME,
);

/** A scheduled run's `{date}`/`{datetime}` come from its scheduled time (right for backfills too). */
function resolveTemplates(input: JobInput): JobInput {
  if (!hasTemplate(input.input) && !hasTemplate(input.outDir)) return input;
  const info = workflowInfo();
  const when = info.typedSearchAttributes.get(scheduledStartTime) ?? info.startTime;
  const tz = input.timezone ?? 'UTC';
  return {
    ...input,
    input: resolveTemplate(input.input, when, tz),
    outDir: resolveTemplate(input.outDir, when, tz),
  };
}

/** Runs a whole batch job; returns the summary also written to `<out>/summary.json`. */
export async function batchJob(rawInput: JobInput, carried?: JobState): Promise<JobSummary> {
  // A job typed into the Web UI may be anything: refuse a malformed one at once, not on every retry.
  const problem = jobInputProblem(rawInput);
  if (problem !== undefined) throw ApplicationFailure.nonRetryable(problem, 'InvalidJobInput');
  let input = carried ? rawInput : resolveTemplates(rawInput);
  const info = workflowInfo();
  const jobId = info.workflowId;
  const useSearchAttributes = input.searchAttributes === true;
  const state: JobState = carried ?? {
    startedAt: new Date(info.startTime).toISOString(),
    notBefore: Math.floor(info.startTime.getTime() / 1000),
    round: 1,
    units: [],
    batches: 0,
    settled: { succeeded: 0, failed: 0 },
    batchFailures: [],
    childFailures: [],
    cancelled: false,
  };
  let phase: JobProgress['phase'] = state.plan ? 'running' : 'planning';

  const progress = (): JobProgress => {
    const cur = state.units.reduce(
      (a, u) => ({ s: a.s + u.succeeded, f: a.f + u.failed, r: a.r + u.retry }),
      { s: 0, f: 0, r: 0 },
    );
    return {
      workflowId: jobId,
      phase,
      round: state.round,
      input: input.input,
      outDir: input.outDir,
      models: state.plan?.models ?? [],
      lines: {
        total: state.plan?.lines ?? 0,
        valid: state.plan?.valid ?? 0,
        rejected: state.plan?.rejected ?? 0,
        succeeded: state.settled.succeeded + cur.s,
        failed: state.settled.failed + cur.f,
        pendingRetry: cur.r,
      },
      shards: state.units,
      batchesCreated: state.batches,
      startedAt: state.startedAt,
      ...(state.failures?.length ? { failures: state.failures } : {}),
      ...providerOutage(state.units),
      ...(state.tokenLimitWaits ? { tokenLimitWaits: state.tokenLimitWaits } : {}),
    };
  };
  const showProgress = () => setCurrentDetails(progressTable(progress()));
  setHandler(progressQuery, progress);
  setHandler(unitUpdateSignal, (u) => {
    const unit = state.units[u.unit.index];
    if (!unit || unit.round !== u.unit.round || unit.status === 'done') return;
    // A unit whose batch was refused for the token limit sends another: each one is a batch created.
    if (u.batchId && u.batchId !== unit.batchId) state.batches++;
    unit.status = u.status;
    unit.batchId = u.batchId ?? unit.batchId;
    if (u.requestCounts) unit.completed = u.requestCounts.completed + u.requestCounts.failed;
    if (u.unreachable) unit.unreachable = u.unreachable;
    else delete unit.unreachable;
    showProgress();
  });
  CancellationScope.current().cancelRequested.catch(() => {
    state.cancelled = true;
    phase = 'cancelling';
  });

  try {
    if (!state.plan) {
      state.plan = await longLocal.planJob.executeWithOptions(
        { ...planOptions, summary: `plan ${input.input}` },
        [input],
      );
      if (state.plan.options) input = { ...input, options: state.plan.options };
      if (state.plan.finished) {
        phase = 'done';
        return state.plan.finished;
      }
      // A resumed job picks up at the last round it packed; collected units are skipped.
      const resumeAt = state.plan.resumeAt;
      state.round = resumeAt?.round ?? 1;
      // A resumed retry round's units carry no token estimates: admission lets them through.
      state.units = resumeAt
        ? freshUnits(state.round, resumeAt.unitLines)
        : freshUnits(state.round, state.plan.shardLines, state.plan.shardTokens);
      if (resumeAt) state.settled = { ...resumeAt.settled };
      if (useSearchAttributes) {
        upsertSearchAttributes({
          [SEARCH_ATTRIBUTES.linesTotal.name]: [state.plan.lines],
          [SEARCH_ATTRIBUTES.status.name]: ['running'],
        });
      }
    }
    phase = 'running';
    showProgress();
    for (;;) {
      const finished = await runWindow(input, state, jobId, showProgress);
      if (!finished) {
        log.info('continuing as new', { round: state.round, historyLength: workflowInfo().historyLength });
        return await continueAsNew<typeof batchJob>(input, state);
      }
      if (state.cancelled) break;
      const retry = state.units.reduce((a, u) => a + u.retry, 0);
      // Past the last attempt only lines the user's cancel stopped are left to send (on resume).
      if (retry === 0) break;
      for (const u of state.units) {
        state.settled.succeeded += u.succeeded;
        state.settled.failed += u.failed;
      }
      const nextRound = state.round + 1;
      const packed = await longLocal.prepareRetryRound.executeWithOptions(
        { ...planOptions, summary: `pack ${retry} retry lines for round ${nextRound}` },
        [
          {
            paths: state.plan.paths,
            round: nextRound,
            maxAttempts: input.options.maxAttempts,
            limits: input.options.limits,
            shardCount: state.plan.shardLines.length,
            withTokens: true,
          },
        ],
      );
      // Histories recorded before rounds carried their tokens hold the bare list of lines.
      const round = Array.isArray(packed) ? { lines: packed } : packed;
      state.round = nextRound;
      state.units = freshUnits(nextRound, round.lines, 'tokens' in round ? round.tokens : undefined);
      showProgress();
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    state.cancelled = true;
  }
  return await CancellationScope.nonCancellable(() =>
    finishJob(input, state, jobId, (p) => (phase = p), showProgress),
  );
}

/**
 * Runs the current round's pending units, at most maxInFlight at once. Returns false when the
 * history is long enough to continue-as-new (no child is running then, so nothing is lost).
 */
async function runWindow(
  input: JobInput,
  state: JobState,
  jobId: string,
  showProgress: () => void,
): Promise<boolean> {
  const plan = state.plan!;
  const o = input.options;
  const running = new Map<number, Promise<void>>();
  const pending = state.units
    .filter((u) => u.status !== 'done' && u.status !== 'failed' && u.status !== 'cancelled')
    .map((u) => u.index);
  // The enqueued-token limit bounds batches; Batch Chat requests are bounded by their own caps.
  const tokens = new EnqueuedTokens(o.mode === 'chat' ? undefined : o.maxEnqueuedTokens);
  const metadata: Record<string, string> = {};
  // The job spec has held both to the provider's metadata lengths.
  if (o.name) metadata.ds_name = o.name;
  if (o.description) metadata.ds_description = o.description;
  const launch = (index: number) => {
    const unit = state.units[index]!;
    unit.status = 'uploading';
    const args: ShardInput = {
      jobId,
      workDir: plan.paths.workDir,
      unit: { round: unit.round, index, lines: unit.lines },
      notBefore: state.notBefore,
      endpoint: o.dryRun ? DRY_RUN.endpoint : o.endpoint,
      completionWindow: o.completionWindow,
      ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
      maxAttempts: o.maxAttempts,
      keepRemoteFiles: o.keepRemoteFiles,
      metadata,
      ...(o.mode === 'chat' ? { chat: o.chat ?? CHAT_DEFAULTS } : {}),
      ...(o.allowDuplicateBatches ? { allowDuplicateBatches: true } : {}),
      ...(plan.resumed ? {} : { freshKey: true }),
    };
    tokens.add(unit);
    const p = executeChild(shardBatch, {
      workflowId: unitWorkflowId(jobId, unit.round, index),
      args: [args],
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      staticSummary: `shard ${index} of ${jobId}, round ${unit.round}: ${unit.lines} lines`,
    }).then(
      (r: UnitResult) => applyResult(state, r),
      (err: unknown) => {
        unit.status = isCancellation(err) ? 'cancelled' : 'failed';
        delete unit.unreachable;
        if (!isCancellation(err)) recordChildFailure(state, unit, err);
      },
    );
    running.set(
      index,
      p.finally(() => {
        running.delete(index);
        tokens.remove(unit);
        showProgress();
      }),
    );
  };
  while (pending.length > 0 || running.size > 0) {
    while (
      running.size < (o.dryRun ? Math.min(o.maxInFlight, DRY_RUN.maxConcurrentBatches) : o.maxInFlight) &&
      pending.length > 0 &&
      !state.cancelled
    ) {
      if (workflowInfo().continueAsNewSuggested) break;
      // The first pending unit whose model has room: one model at its limit does not hold up others.
      const next = pending.findIndex((i) => tokens.admits(state.units[i]!));
      if (next < 0) break;
      launch(pending.splice(next, 1)[0]!);
    }
    if (running.size === 0) return state.cancelled || pending.length === 0;
    await Promise.race(running.values());
  }
  return true;
}

/** A failed child: what the provider said, unwrapped from the child and activity wrappers. */
function recordChildFailure(state: JobState, unit: ShardProgress, err: unknown): void {
  const f = failureFromError(err, unitName(unit));
  state.childFailures.push(`${f.unit}: ${f.message}`);
  addFailure(state, f);
  if (unit.round === 1) {
    state.shardFailures ??= {};
    state.shardFailures[String(unit.index)] = f;
  }
  log.warn('shard failed', { unit: f.unit, code: f.code, message: f.message });
}

/** The longest-running outage among the units, for progress. */
function providerOutage(units: ShardProgress[]): Pick<JobProgress, 'providerUnreachable'> {
  let worst: ShardProgress['unreachable'];
  for (const u of units)
    if (u.unreachable && (!worst || u.unreachable.since < worst.since)) worst = u.unreachable;
  return worst ? { providerUnreachable: worst } : {};
}

function applyResult(state: JobState, r: UnitResult): void {
  const unit = state.units[r.unit.index]!;
  if (r.batchId && !unit.batchId) state.batches++;
  unit.status = r.batchStatus === 'cancelled' || r.batchStatus === null ? 'cancelled' : 'done';
  unit.batchId = r.batchId;
  unit.succeeded = r.succeeded;
  unit.failed = r.failed;
  unit.retry = r.retry;
  unit.completed = r.succeeded + r.failed + r.retry;
  delete unit.unreachable;
  if (r.tokenLimitWaits) state.tokenLimitWaits = (state.tokenLimitWaits ?? 0) + r.tokenLimitWaits;
  const codes = batchFailureCodes(r);
  if (codes.length > 0) {
    state.batchFailures.push({ round: r.unit.round, shard: r.unit.index, batchId: r.batchId, codes });
    for (const f of batchFailureInfos(r)) addFailure(state, f);
  }
  for (const l of r.unavailableLookups ?? []) {
    state.unavailableLookups ??= [];
    if (!state.unavailableLookups.includes(l)) {
      state.unavailableLookups.push(l);
      log.warn('provider lookup unavailable', { lookup: l });
    }
  }
}

/** Failed batches counted by code (each code once per batch). */
function countBatchFailures(state: JobState): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const b of state.batchFailures) for (const c of b.codes ?? []) counts[c] = (counts[c] ?? 0) + 1;
  return counts;
}

/** Why lines without an outcome have none: their shard's failure, else the job's first. */
function lineFailures(state: JobState) {
  const asLine = (f: FailureInfo) => ({
    code: f.code,
    message: f.message,
    status_code: f.status_code ?? null,
  });
  const byShard = Object.fromEntries(
    Object.entries(state.shardFailures ?? {}).map(([k, f]) => [k, asLine(f)]),
  );
  const first = state.failures?.[0];
  if (!first && Object.keys(byShard).length === 0) return undefined;
  return { byShard, ...(first ? { job: asLine(first) } : {}) };
}

/** What the reused answers had cost when they were first paid for: tokens, and at `prices` money. */
function savedBy(
  usageByModel: Record<string, Usage>,
  prices: PriceTable | undefined,
): NonNullable<JobSummary['saved']> {
  const usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  for (const u of Object.values(usageByModel)) {
    usage.prompt_tokens += u.prompt_tokens;
    usage.completion_tokens += u.completion_tokens;
    usage.total_tokens += u.total_tokens;
  }
  return { usage, usageByModel, ...(prices ? { cost: costOf(usageByModel, prices) } : {}) };
}

async function finishJob(
  input: JobInput,
  state: JobState,
  jobId: string,
  setPhase: (p: JobProgress['phase']) => void,
  showProgress: () => void,
): Promise<JobSummary> {
  const plan = state.plan;
  if (!plan)
    throw ApplicationFailure.nonRetryable('the job was cancelled before planning finished', 'JobCancelled');
  setPhase('merging');
  showProgress();
  const failed = state.childFailures.length > 0;
  const mergeStatus: JobSummary['status'] = state.cancelled ? 'cancelled' : failed ? 'failed' : 'completed';
  const reasons = lineFailures(state);
  const merged: MergeSummary = await longLocal.mergeJob.executeWithOptions(
    { ...planOptions, summary: `merge into ${input.outDir}` },
    [
      {
        paths: plan.paths,
        shardLines: plan.shardLines,
        jobStatus: mergeStatus,
        ...(reasons ? { lineFailures: reasons } : {}),
      },
    ],
  );
  // A job none of whose valid lines got an answer did not complete, whatever its batches said.
  const nothingAnswered = mergeStatus === 'completed' && plan.valid > 0 && merged.succeeded === 0;
  const status: JobSummary['status'] = nothingAnswered ? 'failed' : mergeStatus;
  const lookups = state.unavailableLookups ?? [];
  const summary: JobSummary = {
    workflowId: jobId,
    status,
    input: input.input,
    lines: {
      total: plan.lines,
      succeeded: merged.succeeded,
      failed: merged.failed,
      rejected: merged.rejected,
      ...(plan.reused ? { reused: merged.reused ?? 0 } : {}),
    },
    ...(plan.reused && plan.reused.lines > 0
      ? { saved: savedBy(plan.reused.usageByModel, input.options.prices) }
      : {}),
    shards: plan.shardLines.length,
    batches: state.batches,
    rounds: state.round,
    usage: merged.usage,
    usageByModel: merged.usageByModel,
    ...(input.options.prices ? { cost: costOf(merged.usageByModel, input.options.prices) } : {}),
    startedAt: state.startedAt,
    finishedAt: new Date().toISOString(),
    outDir: input.outDir,
    failures: state.failures ?? [],
    ...(state.batchFailures.length ? { batchFailures: countBatchFailures(state) } : {}),
    ...(lookups.length
      ? { providerLookups: { unavailable: lookups, meaning: lookups.map(lookupMeaning) } }
      : {}),
    ...(state.tokenLimitWaits ? { tokenLimitWaits: state.tokenLimitWaits } : {}),
  };
  await longLocal.writeSummary({
    outDir: plan.paths.outDir,
    summary,
    removeWorkDir: mergeStatus === 'completed' && !input.options.keepWorkDir,
  });
  if (input.searchAttributes === true) {
    upsertSearchAttributes({
      [SEARCH_ATTRIBUTES.status.name]: [status],
      [SEARCH_ATTRIBUTES.linesFailed.name]: [merged.failed],
    });
  }
  setPhase('done');
  showProgress();
  if (failed) {
    throw ApplicationFailure.nonRetryable(
      `the job failed: ${state.childFailures.slice(0, 3).join('; ')}`,
      'JobFailed',
      summary,
    );
  }
  return summary;
}
