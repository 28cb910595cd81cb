// The job's window over a round's units: which shard goes next (admission) and the shard
// workflow's arguments.
import { ParentClosePolicy, executeChild, isCancellation, workflowInfo } from '@temporalio/workflow';
import type { UnitProgress, UnitResult } from '../common/job-types.ts';
import { CHAT_DEFAULTS } from '../common/job-types.ts';
import { unitWorkflowId } from '../common/keys.ts';
import { DRY_RUN } from '../common/profiles.ts';
import { deadlineChat } from './job-deadline.ts';
import { applyResult, recordChildFailure, showProgress, type JobRun } from './job-state.ts';
import { shardBatch } from './shard-report.ts';
import type { UnitInput } from './shard.ts';
import { EnqueuedTokens } from './token-limit.ts';

/** The current round's units still to run (neither settled nor given up). */
export function pendingUnits(units: UnitProgress[]): number[] {
  return units
    .filter((u) => u.status !== 'done' && u.status !== 'failed' && u.status !== 'cancelled')
    .map((u) => u.index);
}

/** Shards at once: `--max-in-flight`, and the provider's own cap for a dry run. */
export function windowSize(run: JobRun): number {
  const o = run.input.options;
  return o.dryRun ? Math.min(o.maxInFlight, DRY_RUN.maxConcurrentBatches) : o.maxInFlight;
}

/** The enqueued-token limit bounds batches; Batch Chat requests are bounded by their own caps. */
export function tokenLimitOf(run: JobRun): EnqueuedTokens {
  const o = run.input.options;
  return new EnqueuedTokens(o.mode === 'chat' ? undefined : o.maxEnqueuedTokens);
}

/** The shard workflow's arguments for one unit. */
export function shardInputOf(run: JobRun, unit: UnitProgress): UnitInput {
  const o = run.input.options;
  const plan = run.state.plan!;
  const metadata: Record<string, string> = {};
  // Past a deadline's switch, units go by Batch Chat at a share of the job's chat limits.
  const chat = o.mode === 'chat' ? (o.chat ?? CHAT_DEFAULTS) : deadlineChat(run, unit, windowSize(run));
  // The job spec has held both to the provider's metadata lengths.
  if (o.name) metadata.ds_name = o.name;
  if (o.description) metadata.ds_description = o.description;
  return {
    jobId: run.jobId,
    workDir: plan.paths.workDir,
    unit: { round: unit.round, index: unit.index, lines: unit.lines },
    notBefore: run.state.notBefore,
    endpoint: o.dryRun ? DRY_RUN.endpoint : o.endpoint,
    completionWindow: o.completionWindow,
    ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
    maxAttempts: o.maxAttempts,
    keepRemoteFiles: o.keepRemoteFiles,
    metadata,
    ...(chat ? { chat } : {}),
    ...(o.deadline ? { collectUnsentOnCancel: true } : {}),
    ...(o.allowDuplicateBatches ? { allowDuplicateBatches: true } : {}),
    ...(plan.resumed ? {} : { freshKey: true }),
  };
}

/** The Web UI's one line about a shard workflow. */
export function shardSummary(run: JobRun, unit: UnitProgress): string {
  return `shard ${unit.index} of ${run.jobId}, round ${unit.round}: ${unit.lines} lines`;
}

/**
 * Runs the current round's pending units, at most maxInFlight at once, as children of this run.
 * Returns false when the history is long enough to continue-as-new: it stops launching then and
 * waits for the running children, so none is running when the run ends.
 */
export async function runWindowDraining(run: JobRun): Promise<boolean> {
  const { state } = run;
  const running = new Map<number, Promise<void>>();
  const pending = pendingUnits(state.units);
  const tokens = tokenLimitOf(run);
  const launch = (index: number) => {
    const unit = state.units[index]!;
    unit.status = 'uploading';
    const args = shardInputOf(run, unit);
    tokens.add(unit);
    const p = executeChild(shardBatch, {
      workflowId: unitWorkflowId(run.jobId, unit.round, index),
      args: [args],
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      staticSummary: shardSummary(run, unit),
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
        showProgress(run);
      }),
    );
  };
  while (pending.length > 0 || running.size > 0) {
    while (running.size < windowSize(run) && pending.length > 0 && !state.cancelled) {
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
