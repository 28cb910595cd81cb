// The job: plan the input, run one shard workflow per unit through a bounded window, resubmit
// retryable lines in packed rounds, merge everything into the outputs. Only references cross into
// history (paths, counts, ids); continues-as-new when the history grows.
import {
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  isCancellation,
  log,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTES } from '../common/definitions.ts';
import type { JobInput, JobSummary } from '../common/job-types.ts';
import { jobInputProblem } from '../common/job-types.ts';
import { hasTemplate, resolveTemplate } from '../common/templates.ts';
import { longLocal, planOptions } from './job-calls.ts';
import { finishJob } from './job-finish.ts';
import {
  freshUnits,
  initialState,
  jobProgress,
  showProgress,
  type JobRun,
  type JobState,
} from './job-state.ts';
import { NONSTOP_PATCH, runWindowNonstop, settleUnit } from './job-nonstop.ts';
import { runWindowDraining } from './job-window.ts';
import { progressQuery, unitFailedSignal, unitResultSignal, unitUpdateSignal } from './messages.ts';

export type { JobState } from './job-state.ts';

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

/** The progress query, shards' live updates and the user's cancel. */
function installHandlers(run: JobRun): void {
  const { state } = run;
  setHandler(progressQuery, () => jobProgress(run));
  setHandler(unitUpdateSignal, (u) => {
    run.signals++;
    const unit = state.units[u.unit.index];
    if (!unit || unit.round !== u.unit.round || unit.status === 'done') return;
    // A late update of a shard whose end the job already has must not undo that end.
    if (state.inFlight && !state.inFlight.includes(u.unit.index)) return;
    // A unit whose batch was refused for the token limit sends another: each one is a batch created.
    if (u.batchId && u.batchId !== unit.batchId) state.batches++;
    unit.status = u.status;
    unit.batchId = u.batchId ?? unit.batchId;
    if (u.requestCounts) unit.completed = u.requestCounts.completed + u.requestCounts.failed;
    if (u.unreachable) unit.unreachable = u.unreachable;
    else delete unit.unreachable;
    showProgress(run);
  });
  // Shards that may outlive the run that started them report their end to whichever run is current.
  setHandler(unitResultSignal, (r) => {
    run.signals++;
    settleUnit(run, r.unit, { result: r });
  });
  setHandler(unitFailedSignal, (f) => {
    run.signals++;
    settleUnit(run, f.unit, f);
  });
  CancellationScope.current().cancelRequested.catch(() => {
    state.cancelled = true;
    run.phase = 'cancelling';
  });
}

/**
 * Plans the input (once per job) and sets up round 1's units, or the round a resumed job packed
 * last. Returns the summary of a job the output folder shows already finished.
 */
async function plan(run: JobRun): Promise<JobSummary | undefined> {
  const { state } = run;
  const planned = await longLocal.planJob.executeWithOptions(
    { ...planOptions, summary: `plan ${run.input.input}` },
    [run.input],
  );
  state.plan = planned;
  if (planned.options) run.input = { ...run.input, options: planned.options };
  if (planned.finished) {
    run.phase = 'done';
    return planned.finished;
  }
  // A resumed job picks up at the last round it packed; collected units are skipped.
  const resumeAt = planned.resumeAt;
  state.round = resumeAt?.round ?? 1;
  // A resumed retry round's units carry no token estimates: admission lets them through.
  state.units = resumeAt
    ? freshUnits(state.round, resumeAt.unitLines)
    : freshUnits(state.round, planned.shardLines, planned.shardTokens);
  if (resumeAt) state.settled = { ...resumeAt.settled };
  if (run.input.searchAttributes === true) {
    upsertSearchAttributes({
      [SEARCH_ATTRIBUTES.linesTotal.name]: [planned.lines],
      [SEARCH_ATTRIBUTES.status.name]: ['running'],
    });
  }
  return undefined;
}

/**
 * Packs the lines the round left to retry into the next round's units. Returns false when no
 * round follows (nothing to retry, or the user cancelled).
 */
async function nextRound(run: JobRun): Promise<boolean> {
  const { state, input } = run;
  if (state.cancelled) return false;
  const retry = state.units.reduce((a, u) => a + u.retry, 0);
  // Past the last attempt only lines the user's cancel stopped are left to send (on resume).
  if (retry === 0) return false;
  for (const u of state.units) {
    state.settled.succeeded += u.succeeded;
    state.settled.failed += u.failed;
  }
  const round = state.round + 1;
  const packed = await longLocal.prepareRetryRound.executeWithOptions(
    { ...planOptions, summary: `pack ${retry} retry lines for round ${round}` },
    [
      {
        paths: state.plan!.paths,
        round,
        maxAttempts: input.options.maxAttempts,
        limits: input.options.limits,
        shardCount: state.plan!.shardLines.length,
        withTokens: true,
      },
    ],
  );
  // Histories recorded before rounds carried their tokens hold the bare list of lines.
  const units = Array.isArray(packed) ? { lines: packed } : packed;
  state.round = round;
  state.units = freshUnits(round, units.lines, 'tokens' in units ? units.tokens : undefined);
  showProgress(run);
  return true;
}

/** Runs a whole batch job; returns the summary also written to `<out>/summary.json`. */
export async function batchJob(rawInput: JobInput, carried?: JobState): Promise<JobSummary> {
  // A job typed into the Web UI may be anything: refuse a malformed one at once, not on every retry.
  const problem = jobInputProblem(rawInput);
  if (problem !== undefined) throw ApplicationFailure.nonRetryable(problem, 'InvalidJobInput');
  const info = workflowInfo();
  const state = carried ?? initialState(info.startTime);
  const run: JobRun = {
    input: carried ? rawInput : resolveTemplates(rawInput),
    state,
    jobId: info.workflowId,
    phase: state.plan ? 'running' : 'planning',
    signals: 0,
    changed: false,
  };
  installHandlers(run);
  try {
    if (!state.plan) {
      const finished = await plan(run);
      if (finished) return finished;
    }
    run.phase = 'running';
    showProgress(run);
    do {
      // Jobs recorded before shards could outlive a run drain them before continuing as new.
      const finished = await (patched(NONSTOP_PATCH) ? runWindowNonstop(run) : runWindowDraining(run));
      if (!finished) {
        log.info('continuing as new', { round: state.round, historyLength: workflowInfo().historyLength });
        return await continueAsNew<typeof batchJob>(run.input, state);
      }
    } while (await nextRound(run));
  } catch (err) {
    if (!isCancellation(err)) throw err;
    state.cancelled = true;
  }
  return await CancellationScope.nonCancellable(() => finishJob(run));
}
