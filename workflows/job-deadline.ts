// `--deadline` in the job: the latest moment at which cancelling the running batches and sending
// every line still unanswered through Batch Chat meets the deadline is recomputed as lines finish
// (common/deadline.ts); a durable timer wakes the job then, and the switch cancels the batches in
// flight (each keeps the lines it finished), starts the round's remaining units by Batch Chat, and
// sends the cancelled batches' unfinished lines by Batch Chat in the next round. A deadline already
// too close when the job begins sends everything by Batch Chat from the start.
import { getExternalWorkflowHandle, log, patched, sleep } from '@temporalio/workflow';
import {
  chatShare,
  deadlineInstant,
  switchTime,
  type DeadlineState,
  type SwitchInputs,
} from '../common/deadline.ts';
import { CHAT_DEFAULTS, CHAT_LATENCY_DEFAULT_MS, type UnitProgress } from '../common/job-types.ts';
import { unitWorkflowId } from '../common/keys.ts';
import { sentByChat } from './deadline-accounting.ts';
import { showProgress, type JobRun } from './job-state.ts';

/** Marks histories whose job plans a deadline's switch (only jobs given a deadline carry it). */
export const DEADLINE_PATCH = 'deadline-switch';

/** The job's deadline state, set up on first use; undefined for a job without a deadline. */
function deadlineOf(run: JobRun): DeadlineState | undefined {
  const spec = run.input.options.deadline;
  if (!spec || !run.state.plan) return undefined;
  if (!run.state.deadline) {
    if (!patched(DEADLINE_PATCH)) return undefined;
    const startedAt = Date.parse(run.state.startedAt);
    const at = deadlineInstant(spec, startedAt);
    run.state.deadline = {
      at,
      plannedSwitchAt: at,
      // First asked right after planning: the time so far is one local step on these workers.
      localStepMs: Math.max(0, Date.now() - startedAt),
      chatUnits: [],
      cancelledUnits: [],
      batchesCancelled: 0,
      viaChat: { lines: 0, succeeded: 0, usageByModel: {} },
    };
  }
  return run.state.deadline;
}

/** Lines of the current round not answered yet: what Batch Chat would have to send. */
export function remainingLines(units: UnitProgress[]): number {
  let n = 0;
  for (const u of units) {
    if (u.status === 'done' || u.status === 'cancelled' || u.status === 'failed') n += u.retry;
    else n += Math.max(0, u.lines - u.completed);
  }
  return n;
}

function switchInputs(run: JobRun): SwitchInputs {
  const o = run.input.options;
  return {
    remainingLines: remainingLines(run.state.units),
    chat: o.chat ?? CHAT_DEFAULTS,
    latencyMs: o.chatLatencyMs ?? CHAT_LATENCY_DEFAULT_MS,
    cancelPollMs: Math.min(o.pollIntervalMs ?? 5000, 5000),
    ...(run.state.deadline?.localStepMs !== undefined ? { localStepMs: run.state.deadline.localStepMs } : {}),
  };
}

/** Recomputes the planned switch; true when it is due now (and has not happened). */
function switchDue(run: JobRun, d: DeadlineState): boolean {
  if (d.switchedAt !== undefined) return false;
  d.plannedSwitchAt = switchTime(d.at, switchInputs(run));
  return Date.now() >= d.plannedSwitchAt;
}

/**
 * Makes the switch when it is due: the in-flight shards are cancelled (each keeps what its batch
 * finished and reports the rest as stopped), and every unit started from now on goes by Batch Chat.
 */
export async function switchIfDue(run: JobRun): Promise<void> {
  const d = deadlineOf(run);
  if (run.deadlineClock) run.deadlineClock.woke = false;
  if (!d || !switchDue(run, d)) return;
  const { state } = run;
  const inFlight = [...(state.inFlight ?? [])];
  d.switchedAt = Date.now();
  d.switchRound = state.round;
  d.atStart = state.round === 1 && state.units.every((u) => u.status === 'pending');
  d.cancelledUnits = inFlight;
  const remaining = remainingLines(state.units);
  const at = new Date(d.at).toISOString();
  if (d.atStart)
    log.warn(`deadline ${at} is too close to wait for batches: sending every line by Batch Chat`, {
      lines: remaining,
    });
  else
    log.warn(`deadline ${at}: cancelling ${inFlight.length} running batches, the rest goes by Batch Chat`, {
      lines: remaining,
      round: state.round,
    });
  showProgress(run);
  // A refused cancel means the shard has already ended: its report is on its way.
  await Promise.all(
    inFlight.map((i) =>
      getExternalWorkflowHandle(unitWorkflowId(run.jobId, state.round, i))
        .cancel()
        .catch(() => undefined),
    ),
  );
}

/** True once when the deadline's timer has fired since the job last looked. */
export function deadlineWoke(run: JobRun): boolean {
  return run.deadlineClock?.woke === true;
}

/** Sets a timer for the planned switch unless one already fires no later. */
export function armDeadline(run: JobRun): void {
  const d = run.state.deadline;
  if (!d || d.switchedAt !== undefined) return;
  const clock = (run.deadlineClock ??= { woke: false });
  const at = d.plannedSwitchAt;
  if (clock.timerAt !== undefined && clock.timerAt <= at) return;
  clock.timerAt = at;
  const wait = Math.max(1, at - Date.now());
  void sleep(wait, { summary: `deadline: switch to Batch Chat at ${new Date(at).toISOString()}` }).then(
    () => {
      if (clock.timerAt === at) clock.timerAt = undefined;
      clock.woke = true;
    },
    () => undefined,
  );
}

/** In-flight units whose batches the switch is cancelling: they hold no room in the window. */
export function cancellingUnits(run: JobRun): number {
  const d = run.state.deadline;
  if (!d || d.switchRound !== run.state.round) return 0;
  return (run.state.inFlight ?? []).filter((i) => d.cancelledUnits.includes(i)).length;
}

/**
 * The Batch Chat limits a unit started after the switch sends at: the job's, shared among the
 * chat units that may run at once, so that together they stay within them. Undefined before the
 * switch (the unit goes as a batch).
 */
export function deadlineChat(
  run: JobRun,
  unit: UnitProgress,
  window: number,
): { concurrency: number; qps: number } | undefined {
  const d = run.state.deadline;
  if (d?.switchedAt === undefined) return undefined;
  if (unit.round === d.switchRound && !d.chatUnits.includes(unit.index)) d.chatUnits.push(unit.index);
  if (!sentByChat(d, unit)) return undefined;
  const waiting = run.state.units.filter(
    (u) => u.status === 'pending' || (sentByChat(d, u) && u.status !== 'done' && u.status !== 'failed'),
  ).length;
  return chatShare(run.input.options.chat ?? CHAT_DEFAULTS, Math.min(window, Math.max(1, waiting)));
}
