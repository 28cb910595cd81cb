// The shard workflow as the job starts it: one unit's batch (shard.ts), and its end told to the job
// by signal when the job asks for that. The signal goes to the job's workflow id, so it reaches the
// job's current run, which may not be the run that started this shard.
import {
  CancellationScope,
  ContinueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  type SignalDefinition,
} from '@temporalio/workflow';
import type { UnitResult } from '../common/job-types.ts';
import { failureFromError, unitName } from './failures.ts';
import { unitFailedSignal, unitResultSignal } from './messages.ts';
import { runUnit, type UnitInput } from './shard.ts';

/**
 * Sends the shard's end to the job. A refused signal (the job has ended, or passed its signal limit)
 * is logged: the job also finds ended shards by describing them, so the result is not lost.
 */
async function tell<T extends unknown[]>(
  input: UnitInput,
  signal: SignalDefinition<T>,
  ...args: T
): Promise<void> {
  const job = getExternalWorkflowHandle(input.jobId);
  await CancellationScope.nonCancellable(() => job.signal(signal, ...args)).catch((err: unknown) => {
    log.warn('could not report the shard end to its job', {
      job: input.jobId,
      unit: unitName(input.unit),
      error: err instanceof Error ? err.message : String(err),
    });
  });
}

/** Runs one unit's batch and reports its line counts (to the job by signal too, when asked). */
export async function shardBatch(input: UnitInput): Promise<UnitResult> {
  if (!input.reportResult) return runUnit(input);
  let result: UnitResult;
  try {
    result = await runUnit(input);
  } catch (err) {
    // Continuing as new is not an end: the next run reports.
    if (err instanceof ContinueAsNew) throw err;
    const failure = failureFromError(err, unitName(input.unit));
    await tell(input, unitFailedSignal, {
      unit: input.unit,
      failure,
      ...(isCancellation(err) ? { cancelled: true } : {}),
    });
    throw err;
  }
  await tell(input, unitResultSignal, result);
  return result;
}
