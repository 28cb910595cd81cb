// The job's window when shards outlive the run that started them: the job continues-as-new whenever
// its history (or its count of signals) says so, with shards still running. Each shard reports its
// end by signal to the job's workflow id, which reaches the current run; the next run re-attaches
// the in-flight shards by their deterministic ids and keeps launching, so capacity never idles while
// the job waits for a long batch. Temporal's limits per run, and how this window stays under them:
// - 2,000 pending children: a run starts at most CHILDREN_PER_RUN; shards of earlier runs are not
//   its children, so more than 2,000 can be in flight across runs;
// - 10,000 signals: a run continues-as-new after SIGNALS_PER_RUN;
// - history length: a run continues-as-new when the server suggests it.
import {
  CancellationScope,
  ParentClosePolicy,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { JobOptions, UnitEnd } from '../common/job-types.ts';
import { unitWorkflowId } from '../common/keys.ts';
import { temporalCalls } from './job-calls.ts';
import {
  applyResult,
  recordChildFailure,
  recordUnitFailure,
  showProgress,
  type JobRun,
} from './job-state.ts';
import { armDeadline, cancellingUnits, deadlineWoke, switchIfDue } from './job-deadline.ts';
import { pendingUnits, shardInputOf, shardSummary, tokenLimitOf, windowSize } from './job-window.ts';
import { shardBatch } from './shard-report.ts';

/** Marks histories whose job runs this window (older ones drain their children before continuing). */
export const NONSTOP_PATCH = 'job-never-idles';

/**
 * Marks histories whose window clears its change flag before it looks at the state, not after
 * awaiting its new shards' starts: a shard that ends during that await must still wake the wait,
 * for when every other shard has ended too nothing else would, and the job would stop with shards
 * never launched. (A worker back from a crash sees a shard's start and end in one activation.)
 */
const KEEP_CHANGES_PATCH = 'window-keeps-changes';

/** Children one run starts at most: the server refuses a run more than 2,000 pending children. */
export const CHILDREN_PER_RUN = 1_900;

/**
 * Shards one workflow task starts at most. Starting is synchronous work in the task (commands and
 * their payloads); a window of 2,000 started at once made one task outlast the SDK's 5 s limit on a
 * busy worker, failing it again on every retry. The next slice starts when this one's starts are
 * recorded, in the next task, with no timer.
 */
const STARTS_PER_TASK = 100;

/**
 * Signals one run takes before it continues as new: the server refuses a run more than 10,000. Half
 * of it leaves room for the signals that arrive while the run ends (a cancelled job cannot continue
 * as new, and its in-flight shards each send a few more).
 */
export const SIGNALS_PER_RUN = 5_000;

/** Cancel requests sent at once when the job is cancelled. */
const CANCELS_AT_ONCE = 500;

/**
 * How often the job asks Temporal about in-flight shards it did not start: ten polls' worth (15
 * minutes at the default 60-120 s), so a shard that ended without reporting (terminated, timed out)
 * holds its room a few polls at most, and the check costs ~11 history events each time.
 */
export function checkEveryMs(o: JobOptions): number {
  return o.pollIntervalMs !== undefined ? Math.max(10 * o.pollIntervalMs, 1000) : 15 * 60_000;
}

/** How a unit's shard ended: its result, its failure as reported, or the child's close error. */
export type Settled = UnitEnd | { error: unknown };

/**
 * Applies a unit's end once: a second report (the signal and the child's close event, or a check
 * that raced the signal) or a late one (a unit of another round) is ignored. True when applied.
 */
export function settleUnit(run: JobRun, ref: { round: number; index: number }, end: Settled): boolean {
  const { state } = run;
  const unit = state.units[ref.index];
  const at = state.inFlight?.indexOf(ref.index) ?? -1;
  if (!unit || unit.round !== ref.round || at < 0) return false;
  state.inFlight!.splice(at, 1);
  if ('result' in end) applyResult(state, end.result);
  else {
    const cancelled = 'error' in end ? isCancellation(end.error) : end.cancelled === true;
    unit.status = cancelled ? 'cancelled' : 'failed';
    delete unit.unreachable;
    if (!cancelled) {
      if ('error' in end) recordChildFailure(state, unit, end.error);
      else recordUnitFailure(state, unit, end.failure);
    }
  }
  run.changed = true;
  run.onSettled?.(unit);
  showProgress(run);
  return true;
}

/** Whether this run should hand over to a new one (history or signals near their limits). */
function mustEndRun(run: JobRun): boolean {
  return workflowInfo().continueAsNewSuggested || run.signals >= SIGNALS_PER_RUN;
}

/** Asks Temporal which of these units' shards have ended, and settles those. */
async function checkEnded(run: JobRun, indexes: number[]): Promise<void> {
  if (indexes.length === 0) return;
  const { state } = run;
  const units = indexes.map((i) => ({ round: state.round, index: i, lines: state.units[i]!.lines }));
  try {
    const ends = await CancellationScope.nonCancellable(() =>
      temporalCalls.endedUnits.executeWithOptions(
        {
          startToCloseTimeout: '10m',
          heartbeatTimeout: '1m',
          summary: `check ${units.length} shards for an unreported end`,
        },
        [{ jobId: run.jobId, units }],
      ),
    );
    for (const e of ends) {
      const ref = 'result' in e ? e.result.unit : e.unit;
      if (settleUnit(run, ref, e)) log.warn('a shard ended without reporting to the job', { unit: ref });
    }
  } catch (err) {
    log.warn('could not check the in-flight shards; trying again later', {
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

/**
 * The user cancelled the job: every in-flight shard is asked to cancel, whichever run started it,
 * and the job waits for each one's end (its partial results are kept). A cancelled run cannot
 * continue as new, so this all happens in this run.
 */
async function cancelInFlight(run: JobRun): Promise<void> {
  const { state } = run;
  run.phase = 'cancelling';
  const inFlight = state.inFlight ?? [];
  const ids = inFlight.map((i) => unitWorkflowId(run.jobId, state.round, i));
  for (let i = 0; i < ids.length; i += CANCELS_AT_ONCE) {
    // A refused cancel means that shard has already ended: its report is on its way, or the check
    // below finds it.
    await Promise.all(
      ids.slice(i, i + CANCELS_AT_ONCE).map((id) =>
        getExternalWorkflowHandle(id)
          .cancel()
          .catch(() => undefined),
      ),
    );
  }
  const every = checkEveryMs(run.input.options);
  while (inFlight.length > 0) {
    run.changed = false;
    if (!(await condition(() => run.changed, every))) await checkEnded(run, [...inFlight]);
  }
}

/**
 * Runs the current round's units with at most maxInFlight shards at once, counting those that
 * earlier runs started. Returns true when every unit has ended (or the job was cancelled and every
 * in-flight shard has ended), false when this run should continue as new (shards may be running).
 * Longer than most: the launch, the window, the periodic check and the run's end share the
 * window's counters; split, each would take them all as arguments.
 */
export async function runWindowNonstop(run: JobRun): Promise<boolean> {
  const { state } = run;
  const inFlight = (state.inFlight ??= []);
  const tokens = tokenLimitOf(run);
  // In flight and started by an earlier run (or an earlier attempt of this job): only a signal or
  // the check tells of their end.
  const attached = new Set(inFlight);
  for (const i of inFlight) tokens.add(state.units[i]!);
  const pending = pendingUnits(state.units).filter((i) => !attached.has(i));
  let open = 0; // children this run started that have not closed: the server's pending children
  run.onSettled = (unit) => {
    tokens.remove(unit);
    attached.delete(unit.index);
  };
  const launch = async (index: number) => {
    const unit = state.units[index]!;
    unit.status = 'uploading';
    tokens.add(unit);
    inFlight.push(index);
    open++;
    try {
      // Not cancelled with the job's scope: the job cancels every in-flight shard the same way,
      // including those earlier runs started (cancelInFlight).
      const child = await CancellationScope.nonCancellable(() =>
        startChild(shardBatch, {
          workflowId: unitWorkflowId(run.jobId, unit.round, index),
          args: [{ ...shardInputOf(run, unit), reportResult: true }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          staticSummary: shardSummary(run, unit),
        }),
      );
      void child
        .result()
        .then(
          (result) => settleUnit(run, unit, { result }),
          (error: unknown) => settleUnit(run, unit, { error }),
        )
        .finally(() => open--);
    } catch (err) {
      open--;
      // Still running from an earlier attempt of this job (same id): it reports to this job id.
      if (err instanceof WorkflowExecutionAlreadyStartedError) attached.add(index);
      else settleUnit(run, unit, { error: err });
    }
  };
  const every = checkEveryMs(run.input.options);
  let checkDue = false;
  let timerSet = false;
  const armCheck = () => {
    if (timerSet || attached.size === 0) return;
    timerSet = true;
    sleep(every, { summary: 'check shards of earlier runs' }).then(
      () => ((checkDue = true), (timerSet = false)),
      () => (timerSet = false),
    );
  };
  const keepChanges = patched(KEEP_CHANGES_PATCH);
  for (;;) {
    if (state.cancelled) {
      await CancellationScope.nonCancellable(() => cancelInFlight(run));
      return true;
    }
    // From here on a change (a shard's end) wakes the wait below, even one that comes while this
    // pass awaits its starts.
    if (keepChanges) run.changed = false;
    await switchIfDue(run);
    const starts: Promise<void>[] = [];
    // Shards a deadline's switch is cancelling hold no room: Batch Chat units start beside them.
    while (
      inFlight.length - cancellingUnits(run) < windowSize(run) &&
      pending.length > 0 &&
      open < CHILDREN_PER_RUN &&
      starts.length < STARTS_PER_TASK
    ) {
      if (mustEndRun(run)) break;
      // The first pending unit whose model has room: one model at its limit does not hold up others.
      const next = pending.findIndex((i) => tokens.admits(state.units[i]!));
      if (next < 0) break;
      starts.push(launch(pending.splice(next, 1)[0]!));
    }
    // Every start is recorded before the run may end, so the next run finds each shard running.
    await Promise.all(starts);
    if (starts.length > 0) showProgress(run);
    if (pending.length === 0 && inFlight.length === 0) return true;
    if (state.cancelled) continue;
    const blocked = open >= CHILDREN_PER_RUN && pending.length > 0 && inFlight.length < windowSize(run);
    if (mustEndRun(run) || blocked) return false;
    // A full slice leaves room and shards to start: the next slice, without waiting for a change.
    if (starts.length === STARTS_PER_TASK) continue;
    if (!keepChanges) run.changed = false;
    armCheck();
    armDeadline(run);
    try {
      await condition(
        () => run.changed || checkDue || mustEndRun(run) || state.cancelled || deadlineWoke(run),
      );
    } catch (err) {
      if (!isCancellation(err)) throw err;
      state.cancelled = true;
      continue;
    }
    if (checkDue) {
      checkDue = false;
      await checkEnded(run, [...attached]);
    }
  }
}
