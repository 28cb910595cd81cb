// `batchpilot run` and `batchpilot start`: the whole job in one command, or started on a server.
import { loadConfig, type Config } from '../../common/config.ts';
import { createLogger } from '../../common/logger.ts';
import { boolFlag, stringFlag, UsageError, type Command, type ParsedFlags } from '../command.ts';
import { bringUp } from '../embedded.ts';
import { watchJob } from '../job-handle.ts';
import { JOB_COMMAND_FLAGS, jobInputFromFlags } from '../job-options.ts';
import { defaultJobId, startJob } from '../job-start.ts';
import { connectClient } from '../temporal.ts';

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

export const runCommand: Command = {
  name: 'run',
  summary: 'the whole job in one command: embedded Temporal and emulator when none is configured',
  positionals: ['<input>'],
  flags: { ...outFlag, ...JOB_COMMAND_FLAGS },
  details:
    'Uses TEMPORAL_ADDRESS when set, else starts an embedded Temporal dev server; uses the configured provider, else\nthe local emulator (when no API key is set). Runs an in-process worker, shows progress, prints the summary.\nWithout BATCHPILOT_DATA_DIR, paths are relative to the current folder.',
  async run({ args, flags, stdout, stderr, env }) {
    const out = requireOut(flags);
    // The in-process worker is the user's own: its data root is the current folder unless set.
    const config = configWithProfile(
      env.BATCHPILOT_DATA_DIR ? env : { ...env, BATCHPILOT_DATA_DIR: process.cwd() },
      flags,
    );
    const job = jobInputFromFlags(args[0]!, out, flags, config);
    // The local emulator answers in seconds and polling it costs nothing: poll every 2 s, not 60–120.
    if (config.provider.implicitEmulator && job.options.pollIntervalMs === undefined)
      job.options.pollIntervalMs = 2000;
    const logger = createLogger({ level: env.LOG_LEVEL ? config.logLevel : 'warn' });
    const up = await bringUp(config, logger);
    try {
      for (const note of up.notes) stderr.write(`batchpilot: ${note}\n`);
      const id = stringFlag(flags, 'id') ?? defaultJobId(job.input, job.options.name);
      await startJob(up.client, config.temporal.taskQueue, job, id);
      stderr.write(`batchpilot: started job ${id}\n`);
      return await watchJob(up.client, id, stdout);
    } finally {
      await up.close();
    }
  },
};

export const startCommand: Command = {
  name: 'start',
  summary: 'start a job on the configured Temporal server and print its workflow id',
  positionals: ['<input>'],
  flags: {
    ...outFlag,
    wait: { type: 'boolean', description: 'wait for the end and print the summary' },
    ...JOB_COMMAND_FLAGS,
  },
  async run({ args, flags, stdout, env }) {
    const out = requireOut(flags);
    const config = configWithProfile(env, flags);
    const job = jobInputFromFlags(args[0]!, out, flags, config);
    const client = await connectClient(config);
    const id = stringFlag(flags, 'id') ?? defaultJobId(job.input, job.options.name);
    await startJob(client, config.temporal.taskQueue, job, id);
    stdout.write(`${id}\n`);
    if (!boolFlag(flags, 'wait')) return 0;
    return watchJob(client, id, stdout);
  },
};
