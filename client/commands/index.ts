// Every command of the CLI, in the order --help lists them.
import type { Command } from '../command.ts';
import { codecServerCommand } from './codec-server.ts';
import { devCommand } from './dev.ts';
import { emulatorCommand } from './emulator.ts';
import { runCommand, startCommand } from './run.ts';
import { scheduleCommand } from './schedule.ts';
import { cancelCommand, resultsCommand, statusCommand, watchCommand } from './jobs.ts';
import { workerCommand } from './worker.ts';
import { validateCommand } from './validate.ts';
import { planCommand } from './plan.ts';

export const COMMANDS: Command[] = [
  validateCommand,
  planCommand,
  runCommand,
  startCommand,
  statusCommand,
  watchCommand,
  cancelCommand,
  resultsCommand,
  workerCommand,
  devCommand,
  emulatorCommand,
  scheduleCommand,
  codecServerCommand,
];
