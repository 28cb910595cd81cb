// The planning activity: resolves the job's paths under the data root, then runs the streaming
// planner into the work directory, heartbeating how far it has read.
import fsp from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { jobFingerprint } from '../common/job-record.ts';
import { JobSpecError, planOptionsOf, resolveJobOptions } from '../common/job-spec.ts';
import type { JobInput, JobOptions, JobPaths, JobSummary, PlanSummary } from '../common/job-types.ts';
import type { Profile } from '../common/profiles.ts';
import { PathOutsideDataRootError, resolveInDataRoot } from '../common/paths.ts';
import { InputError, planInput } from '../planner/index.ts';
import type { ActivityDeps } from './deps.ts';
import { failIfDamaged, userFixable } from './disk-errors.ts';
import { claimWorkDir, resumePoint } from './job-claim.ts';
import { logFor } from './log.ts';
import { withHeartbeat } from './heartbeat.ts';
import { readJson } from './lines.ts';
import { writeJsonAtomic } from '../storage/atomic-file.ts';
import { answersSettingsFile, outputFile, planFile, roundDir, workDirOf } from '../storage/layout.ts';
import { ReusedLines } from '../storage/reused-lines.ts';
import { ReuseSourceError, reuseSourceJob } from '../storage/reuse-source.ts';

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

/**
 * The job's options through the job spec, with this worker's provider profile: a job typed into the
 * Web UI gets the defaults, and a bad field fails the job at once with the field's name (retrying
 * cannot fix it).
 */
export function jobOptionsOf(job: JobInput, profile: Profile): JobOptions {
  try {
    return resolveJobOptions(job.options, profile, job.input);
  } catch (err) {
    if (err instanceof JobSpecError)
      throw ApplicationFailure.nonRetryable(
        `the job's options.${err.field}: ${err.problem}`,
        'InvalidJobOptions',
      );
    throw err;
  }
}

/**
 * The planner's reuse hook for this job, or undefined when the worker keeps no answers or the job
 * said `--no-reuse`. Records in the work folder whether collection stores the job's answers (a
 * `--no-reuse` job stores none), before any line is sent.
 */
async function reuseFor(
  deps: ActivityDeps,
  options: JobOptions,
  workDir: string,
): Promise<ReusedLines | undefined> {
  const answers = deps.answers;
  const on = answers !== undefined && options.reuse !== false;
  await writeJsonAtomic(answersSettingsFile(workDir), { store: on });
  if (!on) return undefined;
  let fromJob: string | undefined;
  try {
    fromJob =
      options.reuseFrom === undefined
        ? undefined
        : reuseSourceJob(options.reuseFrom, deps.dataDir, answers.store);
  } catch (err) {
    if (err instanceof ReuseSourceError)
      throw ApplicationFailure.nonRetryable(err.message, 'InvalidJobOptions');
    throw err;
  }
  return new ReusedLines({
    store: answers.store,
    scope: answers.scope,
    dir: roundDir(workDir, 1),
    ...(fromJob !== undefined ? { fromJob } : {}),
  });
}

export function planActivities(deps: ActivityDeps) {
  return {
    /** Validates and shards the input into `<out>/.batchpilot/round-1/`. */
    async planJob(job: JobInput): Promise<PlanSummary> {
      const options = jobOptionsOf(job, deps.profile);
      const paths = userFixable(() => resolveJobPaths(deps.dataDir, job.input, job.outDir), {
        what: 'resolve the job paths',
        dataDir: deps.dataDir,
      });
      const stat = await fsp.stat(paths.input).catch(() => undefined);
      if (!stat)
        throw ApplicationFailure.nonRetryable(
          `input ${job.input} does not exist (looked at ${paths.input}, under this worker's data root ${deps.dataDir}: set BATCHPILOT_DATA_DIR on the worker to the folder that holds it)`,
          'InputMissing',
        );
      if (!stat.isFile())
        throw ApplicationFailure.nonRetryable(`input ${job.input} is not a file`, 'InputNotAFile');
      await userFixable(() => fsp.mkdir(paths.outDir, { recursive: true }), {
        what: `create the output folder ${job.outDir}`,
        path: paths.outDir,
        dataDir: deps.dataDir,
      });
      const ctx = Context.current();
      const jobId = ctx.info.workflowExecution?.workflowId ?? 'unknown-job';
      const claim = await claimWorkDir({
        workDir: paths.workDir,
        jobId,
        fingerprint: jobFingerprint({ ...job, options }, stat),
        force: job.force === true,
        client: ctx.client,
      });
      if (claim === 'resumed') {
        const finished = await readJson<JobSummary>(outputFile(paths.outDir, 'summary')).catch(
          () => undefined,
        );
        if (finished?.workflowId === jobId && finished.status === 'completed') {
          logFor(deps).info({ jobId }, 'job already finished: nothing to send');
          return {
            paths,
            lines: finished.lines.total,
            valid: 0,
            rejected: 0,
            shardLines: [],
            models: [],
            options,
            finished,
          };
        }
        const saved = await readJson<PlanSummary>(planFile(paths.workDir)).catch(() => undefined);
        if (saved) {
          const resumeAt = await resumePoint(paths.workDir).catch(failIfDamaged);
          logFor(deps).info({ jobId, resumeAt: resumeAt?.round ?? 1 }, 'resuming job from its work folder');
          return { ...saved, paths, options, resumed: true, ...(resumeAt ? { resumeAt } : {}) };
        }
      }
      const reuse = await reuseFor(deps, options, paths.workDir);
      const report = await withHeartbeat(() =>
        planInput({
          ...planOptionsOf(paths.input, options),
          outDir: roundDir(paths.workDir, 1),
          onProgress: (p) => ctx.heartbeat(p),
          maxProblems: 20,
          ...(reuse ? { reuse } : {}),
        }).catch((err: unknown) => {
          reuse?.abandon();
          // Bad input (CSV without its columns, more ids than the table holds) will not get better.
          if (err instanceof InputError) throw ApplicationFailure.nonRetryable(err.message, 'InputError');
          throw err;
        }),
      );
      logFor(deps).info(
        { lines: report.lines, valid: report.valid, rejected: report.rejected, shards: report.shards },
        'planned input',
      );
      const plan: PlanSummary = {
        paths,
        lines: report.lines,
        valid: report.valid,
        rejected: report.rejected,
        shardLines: report.shardList.map((s) => s.lines),
        shardTokens: report.shardList.map((s) => ({ model: s.model, tokens: s.inputTokens })),
        models: [...new Set(report.shardList.map((s) => s.model))],
        options,
        ...(report.reused ? { reused: report.reused } : {}),
      };
      await writeJsonAtomic(planFile(paths.workDir), plan);
      return claim === 'resumed' ? { ...plan, resumed: true } : plan;
    },
  };
}
