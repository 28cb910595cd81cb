// The `batchpilot` command: dispatches to one module per command under client/commands/.
import { ConfigError } from '../common/config.ts';
import { PathOutsideDataRootError } from '../common/paths.ts';
import { shutdownTracing } from '../common/tracing.ts';
import { batchpilotVersion } from '../common/version.ts';
import { UsageError, parseCommandArgs, renderHelp, type Command } from './command.ts';
import { COMMANDS } from './commands/index.ts';
import { NoTemporalServerError } from './temporal.ts';

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return [
    "batchpilot: push JSONL datasets of LLM requests through providers' Batch APIs, durably, on Temporal.",
    '',
    'usage: batchpilot <command> [args] [flags]',
    '       batchpilot --version',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run "batchpilot <command> --help" for a command\'s flags.',
    '',
  ].join('\n');
}

/** Runs the CLI and returns the exit code; never exits the process itself (tests call it too). */
export async function main(
  argv: string[],
  io: {
    stdout: NodeJS.WritableStream;
    stderr: NodeJS.WritableStream;
    env: NodeJS.ProcessEnv;
    stdin?: NodeJS.ReadableStream;
  } = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  },
): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(topHelp());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`batchpilot ${batchpilotVersion()}\n`);
    return 0;
  }
  const cmd: Command | undefined = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    io.stderr.write(`batchpilot: unknown command "${name}"\n\n${topHelp()}`);
    return 2;
  }
  try {
    const { args, flags } = parseCommandArgs(cmd, rest);
    if (flags.help) {
      io.stdout.write(renderHelp(cmd));
      return 0;
    }
    return await cmd.run({ args, flags, ...io });
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof NoTemporalServerError) {
      io.stderr.write(`batchpilot ${cmd.name}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof PathOutsideDataRootError) {
      io.stderr.write(`batchpilot ${cmd.name}: ${err.message}\n`);
      return 2;
    }
    io.stderr.write(`batchpilot ${cmd.name}: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  } finally {
    // A command that exits right after starting a job would otherwise lose its buffered spans.
    await shutdownTracing().catch(() => undefined);
  }
}
