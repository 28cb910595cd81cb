// `batchpilot run` and `batchpilot start`: the whole job in one command, or started on a server.
import fs from 'node:fs';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { loadConfig, type Config } from '../../common/config.ts';
import type { JobInput } from '../../common/job-types.ts';
import { createLogger } from '../../common/logger.ts';
import { boolFlag, stringFlag, UsageError, type Command, type ParsedFlags } from '../command.ts';
import { bringUp } from '../embedded.ts';
import { checkJobLocally, decideJob, type LocalJob } from '../job-folder.ts';
import { checkJobInStore, jobLocations, localRunRoot, writeStoredResultsCsv } from '../job-store.ts';
import { exitCodeOf, queryProgress, watchJob } from '../job-handle.ts';
import { JOB_COMMAND_FLAGS, jobInputFromFlags } from '../job-options.ts';
import { defaultJobId, startJob } from '../job-start.ts';
import { renderSummary } from '../progress-view.ts';
import { writeResultsCsv } from '../results-csv.ts';
import { acquireRunLock } from '../run-lock.ts';
import { connectClient } from '../temporal.ts';
import { embeddedServerDb, outputFile, runLockFile } from '../../storage/layout.ts';
import { isS3Uri } from '../../storage/location.ts';
import { Stores } from '../../storage/workspace.ts';

const outFlag = {
  out: { type: 'string', description: 'output folder (under BATCHPILOT_DATA_DIR)', arg: '<dir>' },
} as const;

/** `--profile` on the command line wins over BATCHPILOT_PROVIDER. */
function configWithProfile(env: NodeJS.ProcessEnv, flags: ParsedFlags): Config {
  const profile = stringFlag(flags, 'profile');
  return loadConfig(profile ? { ...env, BATCHPILOT_PROVIDER: profile } : env);
}

function requireOut(flags: ParsedFlags): string {
  const out = stringFlag(flags, 'out');
  if (!out)
    throw new UsageError(
      '--out <dir> is required: the folder for results.jsonl, errors.jsonl, rejected.jsonl and summary.json',
    );
  return out;
}

const forceFlag = {
  force: {
    type: 'boolean',
    description: 'give up the job that --out holds and start a fresh one (new batches for every line)',
  },
} as const;

const formatFlag = {
  format: {
    type: 'string',
    description: 'csv also writes results.csv (custom_id,status_code,content,usage) when the job ends',
    arg: '<csv>',
  },
} as const;

function csvWanted(flags: ParsedFlags): boolean {
  const format = stringFlag(flags, 'format');
  if (format !== undefined && format !== 'csv')
    throw new UsageError(`--format: "${format}" is not supported; use csv`);
  return format === 'csv';
}

async function writeCsvIfWanted(wanted: boolean, out: string, stdout: NodeJS.WritableStream): Promise<void> {
  if (wanted && isS3Uri(out)) {
    const stores = new Stores();
    try {
      const csv = await writeStoredResultsCsv(stores.forOut(out));
      if (csv) stdout.write(`${csv.at} (${csv.rows} rows)\n`);
    } finally {
      stores.close();
    }
    return;
  }
  const results = outputFile(out, 'results');
  if (!wanted || !fs.existsSync(results)) return;
  const csv = outputFile(out, 'resultsCsv');
  const rows = await writeResultsCsv(results, csv);
  stdout.write(`${csv} (${rows} rows)\n`);
}

/** A reader that went away (`run … | head`) must not kill the run and orphan what it started. */
function ignoreBrokenPipe(stream: NodeJS.WritableStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

export const runCommand: Command = {
  name: 'run',
  summary: 'the whole job in one command: embedded Temporal and emulator when none is configured',
  positionals: ['<input>'],
  flags: { ...outFlag, ...forceFlag, ...formatFlag, ...JOB_COMMAND_FLAGS },
  details:
    'Uses the Temporal server TEMPORAL_ADDRESS or the Temporal profile file (TEMPORAL_CONFIG_FILE, else\n~/.config/temporalio/temporal.toml) names, else starts an embedded Temporal dev server (its state kept in\n<out>/.batchpilot/run/); uses the configured provider, else the local emulator (when no API key is set).\nRuns an in-process worker, shows progress, prints the summary. Without BATCHPILOT_DATA_DIR, paths are relative\nto the current folder. The same command again resumes an interrupted job, or reports a finished one without\nsending anything. Ctrl-C (or SIGTERM) cancels the job and writes the outputs (exit 130); a second Ctrl-C\ndetaches at once and the job can be resumed later.',
  async run({ args, flags, stdout, stderr, env }) {
    const out = requireOut(flags);
    ignoreBrokenPipe(stdout);
    // The in-process worker is the user's own: its data root is the current folder unless set.
    const config = configWithProfile(
      env.BATCHPILOT_DATA_DIR ? env : { ...env, BATCHPILOT_DATA_DIR: process.cwd() },
      flags,
    );
    const job = jobInputFromFlags(args[0]!, out, flags, config);
    const csv = csvWanted(flags);
    const force = boolFlag(flags, 'force');
    if (force) job.force = true;
    // Everything that can be checked here is checked before any server starts.
    const local = await checkJob(config, job);
    // The local emulator answers in seconds and polling it costs nothing: poll every 2 s, not 60–120.
    if (config.provider.implicitEmulator && job.options.pollIntervalMs === undefined)
      job.options.pollIntervalMs = 2000;
    const runRoot = localRunRoot(config.dataDir, local.out);
    const lock = acquireRunLock(runLockFile(runRoot), out);
    try {
      const decision = decideJob({
        local,
        job,
        requestedId: stringFlag(flags, 'id'),
        force,
        newId: () => defaultJobId(job.input, job.options.name),
      });
      if (decision.kind === 'finished') {
        stderr.write(
          `batchpilot: job ${decision.id} already finished in ${out}; nothing was sent again (--force starts a fresh job)\n`,
        );
        stdout.write(renderSummary(decision.summary) + '\n');
        await writeCsvIfWanted(csv, local.out, stdout);
        return exitCodeOf(decision.summary);
      }
      const logger = createLogger({ level: env.LOG_LEVEL ? config.logLevel : 'warn' });
      const up = await bringUp(config, logger, {
        dbFilename: embeddedServerDb(runRoot),
        onServerStarted: (pid) => lock.setServerPid(pid),
      });
      try {
        for (const note of up.notes) stderr.write(`batchpilot: ${note}\n`);
        const code = await runToEnd(up.client, config.temporal.taskQueue, job, decision, {
          stdout,
          stderr,
          out,
        });
        await writeCsvIfWanted(csv, local.out, stdout);
        return code;
      } finally {
        await up.close();
      }
    } finally {
      lock.release();
    }
  },
};

async function phaseOf(handle: WorkflowHandle): Promise<string | undefined> {
  return queryProgress(handle).then(
    (p) => p.phase,
    () => undefined,
  );
}

/**
 * Starts the job (or re-attaches to it, or resumes it) and watches it to its end. The first
 * SIGINT/SIGTERM cancels it as `cancel` does and waits for the outputs (exit 130); a second one
 * detaches at once, leaving the job resumable by the same command.
 */
async function runToEnd(
  client: Client,
  taskQueue: string,
  job: JobInput,
  decision: { kind: 'new' | 'resume'; id: string },
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; out: string },
): Promise<number> {
  const { id } = decision;
  const handle = client.workflow.getHandle(id);
  let attached = false;
  if (decision.kind === 'resume') {
    const status = await handle.describe().then(
      (d) => d.status.name,
      () => 'NOT_FOUND',
    );
    attached = status === 'RUNNING';
  }
  if (attached && (await phaseOf(handle)) === 'cancelling') {
    // Left while it was being cancelled (a Ctrl-C, then a second one): let the cancel finish,
    // then resume what it stopped.
    io.stderr.write(
      `batchpilot: job ${id} was being cancelled when it was left; finishing that, then resuming\n`,
    );
    await handle.result().catch(() => undefined);
    attached = false;
  }
  if (attached) io.stderr.write(`batchpilot: re-attached to job ${id}, which was still running\n`);
  else {
    await startJob(client, taskQueue, job, id);
    io.stderr.write(`batchpilot: ${decision.kind === 'resume' ? 'resumed' : 'started'} job ${id}\n`);
  }
  let interrupts = 0;
  const resume = `batchpilot run ${job.input} --out ${job.outDir} --id ${id}`;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      io.stderr.write(
        `\nbatchpilot: ${signal}: cancelling job ${id}: its provider batches are cancelled, what finished is kept and the outputs are written. ${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again detaches at once.\n`,
      );
      handle.cancel().catch(() => undefined);
      return;
    }
    io.stderr.write(
      `\nbatchpilot: detached from job ${id}; its state stays in ${io.out}/.batchpilot. Resume it with:\n  ${resume}\n`,
    );
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const code = await watchJob(client, id, io.stdout);
    if (interrupts > 0) {
      io.stderr.write(`batchpilot: job ${id} cancelled; resume it with: ${resume}\n`);
      return 130;
    }
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export const startCommand: Command = {
  name: 'start',
  summary: 'start a job on the configured Temporal server and print its workflow id',
  positionals: ['<input>'],
  flags: {
    ...outFlag,
    ...forceFlag,
    wait: { type: 'boolean', description: 'wait for the end and print the summary' },
    ...JOB_COMMAND_FLAGS,
  },
  async run({ args, flags, stdout, stderr, env }) {
    const out = requireOut(flags);
    const config = configWithProfile(env, flags);
    const job = jobInputFromFlags(args[0]!, out, flags, config);
    const force = boolFlag(flags, 'force');
    if (force) job.force = true;
    const requestedId = stringFlag(flags, 'id');
    const newId = () => defaultJobId(job.input, job.options.name);
    // When this machine sees the worker's data root, the folder says which job this is; otherwise
    // the worker's plan step applies the same rules and fails the job with the reason.
    const local = await seenLocally(config, job);
    const decision = local
      ? decideJob({ local, job, requestedId, force, newId })
      : ({ kind: 'new', id: requestedId ?? newId() } as const);
    const client = await connectClient(config);
    const handle = client.workflow.getHandle(decision.id);
    if (decision.kind === 'finished') {
      stderr.write(`batchpilot: job ${decision.id} already finished in ${out}; nothing was sent again\n`);
      stdout.write(`${decision.id}\n`);
      if (!boolFlag(flags, 'wait')) return 0;
      stdout.write(renderSummary(decision.summary) + '\n');
      return exitCodeOf(decision.summary);
    }
    const running =
      decision.kind === 'resume' &&
      (await handle.describe().then(
        (d) => d.status.name === 'RUNNING',
        () => false,
      ));
    if (running) stderr.write(`batchpilot: job ${decision.id} is already running on ${out}\n`);
    else {
      await startJob(client, config.temporal.taskQueue, job, decision.id);
      if (decision.kind === 'resume') stderr.write(`batchpilot: resumed job ${decision.id}\n`);
    }
    stdout.write(`${decision.id}\n`);
    if (!boolFlag(flags, 'wait')) return 0;
    return watchJob(client, decision.id, stdout);
  },
};

/**
 * The job's folder as this machine sees it: a local one under the data root, or one in object
 * storage (an s3:// location, or relative paths under an s3:// BATCHPILOT_STORAGE).
 */
async function checkJob(config: Config, job: JobInput): Promise<LocalJob> {
  const locations = jobLocations(config.dataDir, config.storage, job);
  if (!locations) return checkJobLocally(config.dataDir, job);
  const stores = new Stores();
  try {
    return await checkJobInStore(stores, locations, job);
  } finally {
    stores.close();
  }
}

/** The view of the job when this machine sees its data root or store and the input; else undefined. */
async function seenLocally(config: Config, job: JobInput): Promise<LocalJob | undefined> {
  try {
    return await checkJob(config, job);
  } catch {
    return undefined;
  }
}
