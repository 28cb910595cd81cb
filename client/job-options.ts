// Job flags → JobInput, shared by `run`, `start` and `schedule create`.
import fs from 'node:fs';
import type { Config } from '../common/config.ts';
import type { JobInput } from '../common/job-types.ts';
import { stringFlag, UsageError, type FlagSchema, type ParsedFlags } from './command.ts';
import { JOB_FLAGS, jobOptionsFromFlags } from './commands/job-flags.ts';

export const JOB_COMMAND_FLAGS: FlagSchema = JOB_FLAGS;

/** The price table is small: the client reads it and passes it with the job (checked by the spec). */
export function readPrices(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--prices: cannot read ${file}: ${(err as Error).message}`);
  }
}

export function jobInputFromFlags(
  input: string,
  outDir: string,
  flags: ParsedFlags,
  config: Config,
): JobInput {
  if (input === '-')
    throw new UsageError(
      'the input "-" (stdin) works for validate and plan only: a job\'s input is read by the workers, so save it to a file under BATCHPILOT_DATA_DIR first (e.g. cat > batchpilot-data/input.jsonl) and pass that path',
    );
  const pricesFile = stringFlag(flags, 'prices');
  const extra = pricesFile !== undefined ? { prices: readPrices(pricesFile) } : {};
  return { input, outDir, options: jobOptionsFromFlags(input, flags, config.provider.profile, extra) };
}
