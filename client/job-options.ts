// Job flags → JobInput, shared by `run`, `start` and `schedule create`.
import fs from 'node:fs';
import type { Config } from '../common/config.ts';
import { parsePriceTable, type PriceTable } from '../common/pricing.ts';
import { JOB_DEFAULTS, type JobInput, type JobOptions } from '../common/job-types.ts';
import { PROFILES, type ProfileName } from '../common/profiles.ts';
import { parseDuration } from '../common/units.ts';
import {
  boolFlag,
  intFlag,
  parsedFlag,
  stringFlag,
  UsageError,
  type FlagSchema,
  type ParsedFlags,
} from './command.ts';
import { JOB_FLAGS, resolvePlanLimits } from './commands/job-flags.ts';

/** Batch Chat limits (batch-api.md): 10,000 pending requests per model, 1,000 QPS per account. */
const CHAT_LIMITS = { concurrency: 10_000, qps: 1_000 };
/** What --chat-concurrency and --chat-qps are when not given. */
const CHAT_DEFAULTS = { concurrency: 64, qps: 100 };

export const JOB_COMMAND_FLAGS: FlagSchema = {
  ...JOB_FLAGS,
  'chat-concurrency': {
    type: 'string',
    description: `--mode chat: requests waiting at once (at most ${CHAT_LIMITS.concurrency})`,
    default: String(CHAT_DEFAULTS.concurrency),
    arg: '<n>',
  },
  prices: {
    type: 'string',
    description: 'price table JSON: the summary reports the cost at the batch discount',
    arg: '<prices.json>',
  },
  'chat-qps': {
    type: 'string',
    description: `--mode chat: requests started per second (at most ${CHAT_LIMITS.qps})`,
    default: String(CHAT_DEFAULTS.qps),
    arg: '<n>',
  },
};

function completionWindow(flags: ParsedFlags, profileName: ProfileName): string {
  const text = stringFlag(flags, 'completion-window') ?? '24h';
  const m = /^(\d+)(h|d)$/.exec(text);
  if (!m) throw new UsageError(`--completion-window: "${text}" must be hours or days, e.g. 24h, 48h, 7d`);
  const hours = Number(m[1]) * (m[2] === 'd' ? 24 : 1);
  const { min, max } = PROFILES[profileName].windowHours;
  if (hours < min || hours > max) {
    throw new UsageError(
      `--completion-window: ${text} is outside what ${profileName} accepts (${min === max ? `${min}h only` : `${min}h to ${max}h`})`,
    );
  }
  return text;
}

/** The price table is small: the client reads it and passes it with the job. */
function readPrices(file: string): PriceTable {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--prices: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parsePriceTable(value);
  } catch (err) {
    throw new UsageError(`--prices ${file}: ${(err as Error).message}`);
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
  const profile = config.provider.profile;
  const mode = stringFlag(flags, 'mode') ?? JOB_DEFAULTS.mode;
  if (mode !== 'file' && mode !== 'chat') throw new UsageError(`--mode: "${mode}" must be file or chat`);
  const thinking = stringFlag(flags, 'thinking');
  if (thinking !== undefined && thinking !== 'on' && thinking !== 'off' && thinking !== 'keep') {
    throw new UsageError(`--thinking: "${thinking}" must be on, off or keep`);
  }
  const model = stringFlag(flags, 'model');
  const promptColumn = stringFlag(flags, 'prompt-column');
  const options: JobOptions = {
    endpoint: stringFlag(flags, 'endpoint') ?? JOB_DEFAULTS.endpoint,
    completionWindow: completionWindow(flags, profile.name),
    limits: resolvePlanLimits(flags, profile),
    maxAttempts: intFlag(flags, 'max-attempts') ?? JOB_DEFAULTS.maxAttempts,
    maxInFlight: intFlag(flags, 'max-in-flight') ?? JOB_DEFAULTS.maxInFlight,
    dryRun: boolFlag(flags, 'dry-run'),
    mode,
    keepRemoteFiles: boolFlag(flags, 'keep-remote-files'),
  };
  if (boolFlag(flags, 'allow-duplicate-batches')) options.allowDuplicateBatches = true;
  const poll = parsedFlag(flags, 'poll-interval', parseDuration);
  if (poll !== undefined) options.pollIntervalMs = poll;
  const name = stringFlag(flags, 'name');
  if (name !== undefined) {
    if (name.length > 100)
      throw new UsageError(`--name: ${name.length} characters; ds_name takes at most 100`);
    options.name = name;
  }
  const description = stringFlag(flags, 'description');
  if (description !== undefined) {
    if (description.length > 200)
      throw new UsageError(
        `--description: ${description.length} characters; ds_description takes at most 200`,
      );
    options.description = description;
  }
  if (mode === 'chat') {
    if (options.endpoint !== '/v1/chat/completions')
      throw new UsageError('--mode chat sends chat completions only: drop --endpoint or use --mode file');
    if (options.dryRun) throw new UsageError('--dry-run validates batch files: use it with --mode file');
    const concurrency = intFlag(flags, 'chat-concurrency') ?? CHAT_DEFAULTS.concurrency;
    const qps = intFlag(flags, 'chat-qps') ?? CHAT_DEFAULTS.qps;
    if (concurrency > CHAT_LIMITS.concurrency)
      throw new UsageError(
        `--chat-concurrency: at most ${CHAT_LIMITS.concurrency} (the API's pending limit per model)`,
      );
    if (qps > CHAT_LIMITS.qps)
      throw new UsageError(`--chat-qps: at most ${CHAT_LIMITS.qps} (the API's limit per account)`);
    options.chat = { concurrency, qps };
  }
  const pricesFile = stringFlag(flags, 'prices');
  if (pricesFile !== undefined) options.prices = readPrices(pricesFile);
  if (thinking) options.thinking = thinking;
  const budget = intFlag(flags, 'thinking-budget');
  if (budget !== undefined) options.thinkingBudget = budget;
  if (input.toLowerCase().endsWith('.csv')) {
    if (!promptColumn || !model)
      throw new UsageError(
        'a .csv input needs --prompt-column and --model (and optionally --id-column, --system)',
      );
    options.csv = {
      idColumn: stringFlag(flags, 'id-column') ?? 'custom_id',
      promptColumn,
      model,
      ...(stringFlag(flags, 'system') ? { system: stringFlag(flags, 'system')! } : {}),
    };
  }
  return { input, outDir, options };
}
