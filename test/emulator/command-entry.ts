// Runs `batchpilot emulator` the way client/cli.ts does, but through the command module alone, so
// its test does not depend on every other command of the CLI loading.
import { UsageError, parseCommandArgs, renderHelp } from '../../client/command.ts';
import { emulatorCommand } from '../../client/commands/emulator.ts';

try {
  const { args, flags } = parseCommandArgs(emulatorCommand, process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(renderHelp(emulatorCommand));
  } else {
    process.exitCode = await emulatorCommand.run({
      args,
      flags,
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
    });
  }
} catch (err) {
  process.stderr.write(`batchpilot emulator: ${(err as Error).message}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
