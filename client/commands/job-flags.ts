// The job options as flags: `validate` and `plan` take the planning subset (limits, CSV conversion,
// thinking, dry run); `run`, `start` and `schedule create` take all of it. Flags only say what the
// user typed: the job spec (common/job-spec.ts) checks and completes them, the same way it does for
// a job started from the Web UI. Defaults shown in --help come from the profile table and
// JOB_DEFAULTS, never restated here.
import path from 'node:path';
import {
  JobSpecError,
  planOptionsOf,
  resolveJobOptions,
  type PlannerOptions,
} from '../../common/job-spec.ts';
import {
  CHAT_DEFAULTS,
  CHAT_LATENCY_DEFAULT_MS,
  CSV_COLUMN_DEFAULTS,
  JOB_DEFAULTS,
  type JobOptions,
} from '../../common/job-types.ts';
import {
  BATCH_CHAT_LIMITS,
  BATCH_METADATA_LIMITS,
  DRY_RUN,
  ENDPOINTS,
  PROFILES,
  PROFILE_NAMES,
  type Profile,
} from '../../common/profiles.ts';
import { parseDeadline } from '../../common/deadline.ts';
import { parseDuration, parseSize } from '../../common/units.ts';
import {
  UsageError,
  boolFlag,
  intFlag,
  parsedFlag,
  stringFlag,
  type FlagSchema,
  type ParsedFlags,
} from '../command.ts';

const DEFAULT_LIMITS = PROFILES['dashscope-intl'].limits;

/** Provider profile and the per-file limits. */
export const LIMIT_FLAGS: FlagSchema = {
  profile: {
    type: 'string',
    arg: '<name>',
    description: `provider profile for limits (${PROFILE_NAMES.join(', ')}); default BATCHPILOT_PROVIDER`,
  },
  endpoint: {
    type: 'string',
    arg: '<path>',
    description: `the batch endpoint every line's url must equal (${ENDPOINTS.filter((e) => e !== DRY_RUN.endpoint).join(', ')})`,
    default: JOB_DEFAULTS.endpoint,
  },
  'max-lines': {
    type: 'string',
    arg: '<n>',
    description: 'lines per shard file',
    default: `the profile's, ${DEFAULT_LIMITS.maxLines}`,
  },
  'max-bytes': {
    type: 'string',
    arg: '<size>',
    description: 'bytes per shard file, e.g. 500MB',
    default: `the profile's, ${DEFAULT_LIMITS.maxBytes / 1e6}MB`,
  },
  'max-line-bytes': {
    type: 'string',
    arg: '<size>',
    description: 'bytes per request line, e.g. 6MB',
    default: `the profile's, ${DEFAULT_LIMITS.maxLineBytes / 1e6}MB`,
  },
};

/** CSV input (`.csv`) is converted to requests with these. */
export const CSV_FLAGS: FlagSchema = {
  'prompt-column': {
    type: 'string',
    arg: '<name|n>',
    description: 'CSV column holding the prompt (its 1-based position with --no-header)',
    default: `${CSV_COLUMN_DEFAULTS.header.promptColumn}, or ${CSV_COLUMN_DEFAULTS.noHeader.promptColumn} with --no-header`,
  },
  'id-column': {
    type: 'string',
    arg: '<name|n>',
    description: 'CSV column holding the custom_id (its 1-based position with --no-header)',
    default: `${CSV_COLUMN_DEFAULTS.header.idColumn}, or ${CSV_COLUMN_DEFAULTS.noHeader.idColumn} with --no-header`,
  },
  'no-header': {
    type: 'boolean',
    description: "the CSV has no header row (the providers' own layout: custom_id, then the prompt)",
  },
  model: { type: 'string', arg: '<model>', description: 'model for every CSV row (required for .csv input)' },
  system: { type: 'string', arg: '<text>', description: 'system message for every CSV row' },
};

export const THINKING_FLAGS: FlagSchema = {
  thinking: {
    type: 'string',
    arg: 'on|off|keep',
    description: 'set body.enable_thinking on every line (keep: as the lines say)',
    default: 'keep',
  },
  'thinking-budget': {
    type: 'string',
    arg: '<tokens>',
    description: 'set body.thinking_budget on every line',
  },
};

export const DRY_RUN_FLAGS: FlagSchema = {
  'dry-run': {
    type: 'boolean',
    description: `rewrite lines for the free ${DRY_RUN.model} on ${DRY_RUN.endpoint} (shards of at most ${DRY_RUN.limits.maxLines} lines and ${DRY_RUN.limits.maxBytes / 1e6} MB)`,
  },
};

/** Answers of earlier jobs (`validate` and `plan` report how many lines they would answer). */
export const REUSE_FLAGS: FlagSchema = {
  'no-reuse': {
    type: 'boolean',
    description: "send every line: take no earlier job's answers and store none of this job's",
  },
  'reuse-from': {
    type: 'string',
    arg: '<dir|jobId>',
    description: 'take answers only from this job (its output folder or workflow id)',
    default: 'any earlier job with the same provider',
  },
};

/** What `validate` and `plan` take. */
export const PLAN_FLAGS: FlagSchema = {
  ...LIMIT_FLAGS,
  ...CSV_FLAGS,
  ...THINKING_FLAGS,
  ...DRY_RUN_FLAGS,
  ...REUSE_FLAGS,
};

/** Everything `run`, `start` and `schedule create` take. */
export const JOB_FLAGS: FlagSchema = {
  ...PLAN_FLAGS,
  'completion-window': {
    type: 'string',
    arg: '<hours>',
    description: 'batch completion window (24h..336h on DashScope, 24h on OpenAI)',
    default: JOB_DEFAULTS.completionWindow,
  },
  'poll-interval': {
    type: 'string',
    arg: '<duration>',
    description: 'fixed time between batch polls (e.g. 1s); default a random 60-120s per poll',
  },
  'max-attempts': {
    type: 'string',
    arg: '<n>',
    description: 'attempts per line',
    default: String(JOB_DEFAULTS.maxAttempts),
  },
  'max-in-flight': {
    type: 'string',
    arg: '<n>',
    description: 'provider batches at once',
    default: String(JOB_DEFAULTS.maxInFlight),
  },
  'max-enqueued-tokens': {
    type: 'string',
    arg: '<n>',
    description:
      "estimated input tokens a model may have in this job's unfinished batches at once (OpenAI's enqueued-token limit, or less); a shard larger than it still goes alone",
    default: "the profile's, none",
  },
  name: {
    type: 'string',
    arg: '<text>',
    description: `job name (ds_name, at most ${BATCH_METADATA_LIMITS.name} characters)`,
  },
  description: {
    type: 'string',
    arg: '<text>',
    description: `job description (ds_description, at most ${BATCH_METADATA_LIMITS.description})`,
  },
  mode: {
    type: 'string',
    arg: 'file|chat',
    description: 'file batches, or each line through the synchronous Batch Chat API',
    default: JOB_DEFAULTS.mode,
  },
  'chat-concurrency': {
    type: 'string',
    description: `--mode chat or a --deadline's fallback: requests waiting at once (at most ${BATCH_CHAT_LIMITS.concurrency})`,
    default: String(CHAT_DEFAULTS.concurrency),
    arg: '<n>',
  },
  'chat-qps': {
    type: 'string',
    description: `--mode chat or a --deadline's fallback: requests started per second (at most ${BATCH_CHAT_LIMITS.qps})`,
    default: String(CHAT_DEFAULTS.qps),
    arg: '<n>',
  },
  deadline: {
    type: 'string',
    arg: '<ISO time|duration>',
    description:
      "answer every line by then (e.g. 2026-12-01T06:00:00Z, or 6h from the job's start): batches not done in time are cancelled, keeping what finished, and the rest goes through Batch Chat at --chat-concurrency/--chat-qps",
  },
  'chat-latency': {
    type: 'string',
    arg: '<duration>',
    description: 'with --deadline: how long one Batch Chat request is assumed to take, to plan the switch',
    default: `${CHAT_LATENCY_DEFAULT_MS / 1000}s`,
  },
  'keep-remote-files': {
    type: 'boolean',
    description: "keep the job's provider files (default: delete them once results are safe)",
  },
  'allow-duplicate-batches': {
    type: 'boolean',
    description:
      'on a provider that cannot list batches, re-send a create whose outcome is unknown (may pay for a second batch; default: stop the shard and say what to check)',
  },
  prices: {
    type: 'string',
    description: 'price table JSON: the summary reports the cost at the batch discount',
    arg: '<prices.json>',
  },
  id: { type: 'string', arg: '<workflowId>', description: 'workflow id of the job (default: generated)' },
};

/** The profile from --profile, else BATCHPILOT_PROVIDER, else the DashScope limits. */
export function profileFromFlags(flags: ParsedFlags, env: NodeJS.ProcessEnv): Profile {
  const name = stringFlag(flags, 'profile') ?? (env.BATCHPILOT_PROVIDER || undefined);
  if (name === undefined) return PROFILES['dashscope-intl'];
  if (!(PROFILE_NAMES as readonly string[]).includes(name)) {
    const from = stringFlag(flags, 'profile') !== undefined ? '--profile' : 'BATCHPILOT_PROVIDER';
    throw new UsageError(`${from}: "${name}" is not a profile; use one of ${PROFILE_NAMES.join(', ')}`);
  }
  return PROFILES[name as Profile['name']];
}

/** The flag that sets each job option, for errors the user can act on. */
const FLAG_OF: Record<string, string> = {
  endpoint: 'endpoint',
  completionWindow: 'completion-window',
  'limits.maxLines': 'max-lines',
  'limits.maxBytes': 'max-bytes',
  'limits.maxLineBytes': 'max-line-bytes',
  pollIntervalMs: 'poll-interval',
  maxAttempts: 'max-attempts',
  maxInFlight: 'max-in-flight',
  maxEnqueuedTokens: 'max-enqueued-tokens',
  name: 'name',
  description: 'description',
  dryRun: 'dry-run',
  mode: 'mode',
  'chat.concurrency': 'chat-concurrency',
  'chat.qps': 'chat-qps',
  deadline: 'deadline',
  'deadline.at': 'deadline',
  'deadline.afterMs': 'deadline',
  chatLatencyMs: 'chat-latency',
  keepRemoteFiles: 'keep-remote-files',
  allowDuplicateBatches: 'allow-duplicate-batches',
  thinking: 'thinking',
  thinkingBudget: 'thinking-budget',
  'csv.header': 'no-header',
  'csv.idColumn': 'id-column',
  'csv.promptColumn': 'prompt-column',
  'csv.model': 'model',
  'csv.system': 'system',
  prices: 'prices',
  reuse: 'no-reuse',
  reuseFrom: 'reuse-from',
};

const CSV_ONLY = ['model', 'system', 'prompt-column', 'id-column', 'no-header'];

const given = (flags: ParsedFlags, name: string): boolean =>
  flags[name] !== undefined && flags[name] !== false;

/**
 * The job options the flags state, as the job spec reads them (unset flags left out, so the spec's
 * defaults apply). Flags a command does not declare are never set, so one function serves all.
 */
export function optionsFromFlags(input: string, flags: ParsedFlags): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  const set = (key: string, value: unknown) => {
    if (value !== undefined) raw[key] = value;
  };
  set('endpoint', stringFlag(flags, 'endpoint'));
  set('completionWindow', stringFlag(flags, 'completion-window'));
  const limits = {
    ...(given(flags, 'max-lines') ? { maxLines: intFlag(flags, 'max-lines') } : {}),
    ...(given(flags, 'max-bytes') ? { maxBytes: parsedFlag(flags, 'max-bytes', parseSize) } : {}),
    ...(given(flags, 'max-line-bytes')
      ? { maxLineBytes: parsedFlag(flags, 'max-line-bytes', parseSize) }
      : {}),
  };
  if (Object.keys(limits).length > 0) raw.limits = limits;
  set('pollIntervalMs', parsedFlag(flags, 'poll-interval', parseDuration));
  set('maxAttempts', intFlag(flags, 'max-attempts'));
  set('maxInFlight', intFlag(flags, 'max-in-flight'));
  set('maxEnqueuedTokens', intFlag(flags, 'max-enqueued-tokens'));
  set('name', stringFlag(flags, 'name'));
  set('description', stringFlag(flags, 'description'));
  if (boolFlag(flags, 'dry-run')) raw.dryRun = true;
  set('mode', stringFlag(flags, 'mode'));
  if (given(flags, 'chat-concurrency') || given(flags, 'chat-qps'))
    raw.chat = {
      ...(given(flags, 'chat-concurrency') ? { concurrency: intFlag(flags, 'chat-concurrency') } : {}),
      ...(given(flags, 'chat-qps') ? { qps: intFlag(flags, 'chat-qps') } : {}),
    };
  set(
    'deadline',
    parsedFlag(flags, 'deadline', (t) => parseDeadline(t, Date.now())),
  );
  set('chatLatencyMs', parsedFlag(flags, 'chat-latency', parseDuration));
  if (boolFlag(flags, 'keep-remote-files')) raw.keepRemoteFiles = true;
  if (boolFlag(flags, 'allow-duplicate-batches')) raw.allowDuplicateBatches = true;
  set('thinking', stringFlag(flags, 'thinking'));
  set('thinkingBudget', intFlag(flags, 'thinking-budget'));
  if (boolFlag(flags, 'no-reuse')) raw.reuse = false;
  set('reuseFrom', stringFlag(flags, 'reuse-from'));
  if (path.extname(input).toLowerCase() === '.csv') {
    const model = stringFlag(flags, 'model');
    if (!model)
      throw new UsageError(`${path.basename(input)} is CSV: --model is required to convert its rows`);
    raw.csv = {
      header: !boolFlag(flags, 'no-header'),
      model,
      ...(given(flags, 'id-column') ? { idColumn: stringFlag(flags, 'id-column') } : {}),
      ...(given(flags, 'prompt-column') ? { promptColumn: stringFlag(flags, 'prompt-column') } : {}),
      ...(given(flags, 'system') ? { system: stringFlag(flags, 'system') } : {}),
    };
  } else {
    const csvFlag = CSV_ONLY.find((f) => given(flags, f));
    if (csvFlag)
      throw new UsageError(`--${csvFlag} converts CSV input (a .csv file); ${path.basename(input)} is JSONL`);
  }
  return raw;
}

/** The job spec's verdict on the flags, its errors naming the flag to change. */
export function jobOptionsFromFlags(
  input: string,
  flags: ParsedFlags,
  profile: Profile,
  extra: Record<string, unknown> = {},
): JobOptions {
  try {
    return resolveJobOptions({ ...optionsFromFlags(input, flags), ...extra }, profile, input);
  } catch (err) {
    if (!(err instanceof JobSpecError)) throw err;
    const flag = FLAG_OF[err.field];
    throw new UsageError(flag ? `--${flag}: ${err.problem}` : err.message);
  }
}

/** What `validate` and `plan` hand the planner for `input` (an absolute path). */
export function planOptionsFromFlags(input: string, flags: ParsedFlags, profile: Profile): PlannerOptions {
  return planOptionsOf(input, jobOptionsFromFlags(input, flags, profile));
}
