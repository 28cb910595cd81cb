// The job's end: merge every round's outcomes into the outputs, write summary.json, and fail the
// job when a shard failed (with the summary as the failure's details).
import { ApplicationFailure, upsertSearchAttributes } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../common/definitions.ts';
import type { FailureInfo, JobSummary, MergeSummary, PlanSummary } from '../common/job-types.ts';
import { deadlineSummary } from '../common/deadline.ts';
import { costOf, type PriceTable, type Usage } from '../common/pricing.ts';
import { lookupMeaning } from '../common/provider-lookups.ts';
import { longLocal, planOptions } from './job-calls.ts';
import { showProgress, type JobRun, type JobState } from './job-state.ts';

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

/** summary.json's content from the plan, the merge's counts and the job's state. */
function summaryOf(run: JobRun, plan: PlanSummary, merged: MergeSummary, status: JobSummary['status']) {
  const { state, input } = run;
  const lookups = state.unavailableLookups ?? [];
  const summary: JobSummary = {
    workflowId: run.jobId,
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
      ? { saved: savedBy(plan.reused.usageByModel, run.input.options.prices) }
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
    ...(state.deadline
      ? { deadline: deadlineSummary(state.deadline, merged.succeeded, input.options.prices) }
      : {}),
  };
  return summary;
}

/** Merges, writes the summary and ends the job (throws `JobFailed` when a shard failed). */
export async function finishJob(run: JobRun): Promise<JobSummary> {
  const { state, input } = run;
  const plan = state.plan;
  if (!plan)
    throw ApplicationFailure.nonRetryable('the job was cancelled before planning finished', 'JobCancelled');
  run.phase = 'merging';
  showProgress(run);
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
  const summary = summaryOf(run, plan, merged, status);
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
  run.phase = 'done';
  showProgress(run);
  if (failed) {
    throw ApplicationFailure.nonRetryable(
      `the job failed: ${state.childFailures.slice(0, 3).join('; ')}`,
      'JobFailed',
      summary,
    );
  }
  return summary;
}
