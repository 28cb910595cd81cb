// The planning activity: resolves the job's paths under the data root, then runs the streaming
// planner into the work directory, heartbeating how far it has read.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { jobFingerprint } from '../common/job-record.ts';
import { JobSpecError, planOptionsOf, resolveJobOptions } from '../common/job-spec.ts';
import type { JobInput, JobOptions, JobPaths, JobSummary, PlanSummary } from '../common/job-types.ts';
import type { Profile } from '../common/profiles.ts';
import { PathOutsideDataRootError } from '../common/paths.ts';
import { InputError, planInput } from '../planner/index.ts';
import type { ActivityDeps } from './deps.ts';
import { failIfDamaged, userFixable } from './disk-errors.ts';
import { claimWorkDir, resumePoint } from './job-claim.ts';
import { logFor } from './log.ts';
import { withHeartbeat } from './heartbeat.ts';
import { readPlanSummary } from '../storage/records.ts';
import { storesOf } from './stores.ts';
import { writeJsonAtomic } from '../storage/atomic-file.ts';
import { answersSettingsFile, OUTPUT_NAMES, planFile, roundDir, workKey } from '../storage/layout.ts';
import { resolveLocation, StorageConfigError, workLocationOf } from '../storage/location.ts';
import { readText, type JobStore } from '../storage/store.ts';
import { withWorkspace, type Workspace } from '../storage/workspace.ts';
import { ObjectInputError } from '../storage/object-input.ts';
import { ReusedLines } from '../storage/reused-lines.ts';
import { ReuseSourceError, resolveReuseSource } from '../storage/reuse-source.ts';

/**
 * The job's input and output as locations: local paths under the data root, or `s3://` URIs
 * (given so, or relative under BATCHPILOT_STORAGE when that is object storage).
 */
export function resolveJobPaths(dataDir: string, input: string, outDir: string, storage?: string): JobPaths {
  try {
    const out = resolveLocation(outDir, storage, dataDir);
    return { input: resolveLocation(input, storage, dataDir), outDir: out, workDir: workLocationOf(out) };
  } catch (err) {
    if (err instanceof PathOutsideDataRootError)
      throw ApplicationFailure.nonRetryable(err.message, 'PathOutsideDataRoot');
    if (err instanceof StorageConfigError)
      throw ApplicationFailure.nonRetryable(err.message, 'StorageConfig');
    throw err;
  }
}

/** Commits a finished shard's files (under the workspace's folder) to the store and drops them. */
async function shipShard(ws: Workspace, files: string[]): Promise<void> {
  for (const file of files) await ws.pushAndDrop(path.relative(ws.dir, file).split(path.sep).join('/'), file);
}

const parseJson = <T>(text: string | undefined): T | undefined => {
  try {
    return text === undefined ? undefined : (JSON.parse(text) as T);
  } catch {
    return undefined;
  }
};

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
 * `--no-reuse` job stores none), before any line is sent; a store that is read through a local
 * mirror (object storage) is brought up to date here, before the plan's synchronous lookups.
 */
async function reuseFor(
  deps: ActivityDeps,
  options: JobOptions,
  ws: Workspace,
): Promise<ReusedLines | undefined> {
  const answers = deps.answers;
  const on = answers !== undefined && options.reuse !== false;
  await writeJsonAtomic(answersSettingsFile(ws.dir), { store: on });
  // On object storage, collection runs on whichever worker takes the unit: it reads this there.
  if (ws.remote) await ws.push(workKey.answers());
  if (!on) return undefined;
  let fromJob: string | undefined;
  try {
    fromJob =
      options.reuseFrom === undefined
        ? undefined
        : await resolveReuseSource(options.reuseFrom, deps.dataDir, answers.store, storesOf(deps));
  } catch (err) {
    if (err instanceof ReuseSourceError)
      throw ApplicationFailure.nonRetryable(err.message, 'InvalidJobOptions');
    throw err;
  }
  return new ReusedLines({
    store: await answers.store.prepare(fromJob),
    scope: answers.scope,
    dir: roundDir(ws.dir, 1),
  });
}

/**
 * The activities of planning (planJob), built on the worker's dependencies. Long as a whole, not as a unit: each
 * inner function is one activity or one named step of one, and they share the dependencies and the
 * provider caller this closure holds.
 */
export function planActivities(deps: ActivityDeps) {
  return {
    /** Validates and shards the input into `<out>/.batchpilot/round-1/`. */
    async planJob(job: JobInput): Promise<PlanSummary> {
      const options = jobOptionsOf(job, deps.profile);
      const paths = userFixable(() => resolveJobPaths(deps.dataDir, job.input, job.outDir, deps.storage), {
        what: 'resolve the job paths',
        dataDir: deps.dataDir,
      });
      const source = storesOf(deps).forFile(paths.input);
      const stat = await source.store.stat(source.key);
      if (!stat)
        throw ApplicationFailure.nonRetryable(
          source.store.kind === 'local'
            ? `input ${job.input} does not exist (looked at ${paths.input}, under this worker's data root ${deps.dataDir}: set BATCHPILOT_DATA_DIR on the worker to the folder that holds it)`
            : `input ${job.input} does not exist (looked at ${paths.input}): check the key, or BATCHPILOT_STORAGE on the worker`,
          'InputMissing',
        );
      if (source.store.kind === 'local' && !(await fsp.stat(paths.input)).isFile())
        throw ApplicationFailure.nonRetryable(`input ${job.input} is not a file`, 'InputNotAFile');
      return withWorkspace(
        storesOf(deps),
        paths.workDir,
        (ws) => plan(job, options, paths, stat, ws, source),
        'plan',
      );
    },
  };

  /**
   * Claims the work folder, then reports a finished job, resumes a planned one or plans the input
   * and commits the round: one sequence, each step deciding whether the next runs, kept whole so
   * it reads in the order it happens.
   */
  async function plan(
    job: JobInput,
    options: JobOptions,
    paths: JobPaths,
    stat: { size: number; mtimeMs: number },
    ws: Workspace,
    source: { store: JobStore; key: string },
  ): Promise<PlanSummary> {
    if (!ws.remote)
      await userFixable(() => fsp.mkdir(paths.outDir, { recursive: true }), {
        what: `create the output folder ${job.outDir}`,
        path: paths.outDir,
        dataDir: deps.dataDir,
      });
    const ctx = Context.current();
    const jobId = ctx.info.workflowExecution?.workflowId ?? 'unknown-job';
    const claim = await claimWorkDir({
      ws,
      jobId,
      fingerprint: jobFingerprint({ ...job, options }, stat),
      force: job.force === true,
      client: ctx.client,
    });
    if (claim === 'resumed') {
      const finished = parseJson<JobSummary>(await readText(ws.store, OUTPUT_NAMES.summary));
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
      const saved = await readPlanSummary(await ws.pull(workKey.plan())).catch(failIfDamaged);
      if (saved) {
        const resumeAt = await resumePoint(ws).catch(failIfDamaged);
        logFor(deps).info({ jobId, resumeAt: resumeAt?.round ?? 1 }, 'resuming job from its work folder');
        return { ...saved, paths, options, resumed: true, ...(resumeAt ? { resumeAt } : {}) };
      }
    }
    // Preparing the answer store merges its indexes (on object storage, after mirroring up to its
    // bound): seconds per million answers, so heartbeat meanwhile.
    const reuse = await withHeartbeat(() => reuseFor(deps, options, ws));
    // An object is read where it lies (ranged GETs, nothing on this disk); on object storage each
    // finished shard is committed and dropped at once, so scratch holds only the shards being
    // written, whatever the input's size.
    const inputBytes =
      source.store.kind === 'local' ? undefined : storesOf(deps).objectInput(paths.input, stat.size);
    const report = await withHeartbeat(() =>
      planInput({
        ...planOptionsOf(paths.input, options),
        ...(inputBytes ? { inputBytes } : {}),
        outDir: roundDir(ws.dir, 1),
        onProgress: (p) => ctx.heartbeat(p),
        maxProblems: 20,
        ...(reuse ? { reuse } : {}),
        ...(ws.remote ? { onShardDone: (files: string[]) => shipShard(ws, files) } : {}),
      }).catch((err: unknown) => {
        reuse?.abandon();
        // Bad input (CSV without its columns, more ids than the table holds) will not get better;
        // nor will an object the store refuses (gone, forbidden).
        if (err instanceof InputError) throw ApplicationFailure.nonRetryable(err.message, 'InputError');
        if (err instanceof ObjectInputError && err.permanent)
          throw ApplicationFailure.nonRetryable(err.message, 'InputUnreadable');
        throw err;
      }),
    );
    // The manifest is the round's commit marker: pushed after every file it covers.
    await ws.pushPrefix(workKey.round(1), (k) => k === workKey.roundManifest(1));
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
    await writeJsonAtomic(planFile(ws.dir), plan);
    await ws.push(workKey.plan());
    return claim === 'resumed' ? { ...plan, resumed: true } : plan;
  }
}
