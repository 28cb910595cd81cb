// The planning activity: resolves the job's paths under the data root, then runs the streaming
// planner into the work directory, heartbeating how far it has read.
import fsp from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { JobInput, JobPaths, PlanSummary } from '../common/job-types.ts';
import { DRY_RUN, type Limits } from '../common/profiles.ts';
import { PathOutsideDataRootError, resolveInDataRoot } from '../common/paths.ts';
import { InputError, planInput } from '../planner/index.ts';
import type { ActivityDeps } from './deps.ts';
import { logFor } from './log.ts';
import { withHeartbeat } from './heartbeat.ts';
import { readJson, writeJsonAtomic } from './lines.ts';
import { ownerFile, roundDir, workDirOf } from './work-dir.ts';

export function resolveJobPaths(dataDir: string, input: string, outDir: string): JobPaths {
  try {
    const out = resolveInDataRoot(dataDir, outDir);
    return { input: resolveInDataRoot(dataDir, input), outDir: out, workDir: workDirOf(out) };
  } catch (err) {
    if (err instanceof PathOutsideDataRootError)
      throw ApplicationFailure.nonRetryable(err.message, 'PathOutsideDataRoot');
    throw err;
  }
}

/** DashScope's test model takes at most 100 lines and 1 MB per file. */
function dryRunLimits(l: Limits): Limits {
  const d = DRY_RUN.limits;
  return {
    maxLines: Math.min(l.maxLines, d.maxLines),
    maxBytes: Math.min(l.maxBytes, d.maxBytes),
    maxLineBytes: Math.min(l.maxLineBytes, d.maxLineBytes),
  };
}

/**
 * The work directory belongs to one job id. A re-run with the same id keeps it (collected units
 * are not sent again); another job writing to the same --out starts from a clean one.
 */
async function claimWorkDir(workDir: string, jobId: string): Promise<void> {
  const owner = await readJson<{ jobId: string }>(ownerFile(workDir)).catch(() => undefined);
  if (owner?.jobId === jobId) return;
  await fsp.rm(workDir, { recursive: true, force: true });
  await writeJsonAtomic(ownerFile(workDir), { jobId });
}

export function planActivities(deps: ActivityDeps) {
  return {
    /** Validates and shards the input into `<out>/.batchpilot/round-1/`. */
    async planJob(job: JobInput): Promise<PlanSummary> {
      const paths = resolveJobPaths(deps.dataDir, job.input, job.outDir);
      const stat = await fsp.stat(paths.input).catch(() => undefined);
      if (!stat)
        throw ApplicationFailure.nonRetryable(
          `input ${job.input} does not exist (looked at ${paths.input})`,
          'InputMissing',
        );
      if (!stat.isFile())
        throw ApplicationFailure.nonRetryable(`input ${job.input} is not a file`, 'InputNotAFile');
      await fsp.mkdir(paths.outDir, { recursive: true });
      const ctx = Context.current();
      await claimWorkDir(paths.workDir, ctx.info.workflowExecution?.workflowId ?? 'unknown-job');
      const o = job.options;
      const report = await withHeartbeat(() =>
        planInput({
          input: paths.input,
          outDir: roundDir(paths.workDir, 1),
          // Lines are checked against the job's endpoint, then rewritten for the dry run.
          endpoint: o.endpoint,
          limits: o.dryRun ? dryRunLimits(o.limits) : o.limits,
          ...(o.csv ? { csv: o.csv } : {}),
          rewrite: {
            ...(o.dryRun ? { model: DRY_RUN.model, url: DRY_RUN.endpoint } : {}),
            ...(o.thinking ? { thinking: o.thinking } : {}),
            ...(o.thinkingBudget !== undefined ? { thinkingBudget: o.thinkingBudget } : {}),
          },
          onProgress: (p) => ctx.heartbeat(p),
          maxProblems: 20,
        }).catch((err: unknown) => {
          // Bad input (CSV without its columns, more ids than the table holds) will not get better.
          if (err instanceof InputError) throw ApplicationFailure.nonRetryable(err.message, 'InputError');
          throw err;
        }),
      );
      logFor(deps).info(
        { lines: report.lines, valid: report.valid, rejected: report.rejected, shards: report.shards },
        'planned input',
      );
      return {
        paths,
        lines: report.lines,
        valid: report.valid,
        rejected: report.rejected,
        shardLines: report.shardList.map((s) => s.lines),
        models: [...new Set(report.shardList.map((s) => s.model))],
      };
    },
  };
}
