// The job options of the contract as one flag schema: `validate` and `plan` take the planning subset
// (limits, CSV conversion, thinking, dry run); `run`, `start` and `schedule create` take all of it.
// Defaults shown in --help come from the profile table (common/profiles.ts) and JOB_DEFAULTS
// (common/job-types.ts), never restated here.
import path from 'node:path';
import { JOB_DEFAULTS } from '../../common/job-types.ts';
import {
  DRY_RUN,
  ENDPOINTS,
  PROFILES,
  PROFILE_NAMES,
  type Limits,
  type Profile,
} from '../../common/profiles.ts';
import { parseSize } from '../../common/units.ts';
import type { PlanOptions } from '../../planner/index.ts';
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
    arg: '<name>',
    description: 'CSV column holding the prompt',
    default: 'prompt',
  },
  'id-column': {
    type: 'string',
    arg: '<name>',
    description: 'CSV column holding the custom_id',
    default: 'custom_id',
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

/** What `validate` and `plan` take. */
export const PLAN_FLAGS: FlagSchema = { ...LIMIT_FLAGS, ...CSV_FLAGS, ...THINKING_FLAGS, ...DRY_RUN_FLAGS };

/** Everything `run`, `start` and `schedule create` take. */
export const JOB_FLAGS: FlagSchema = {
  ...PLAN_FLAGS,
  'completion-window': {
    type: 'string',
    arg: '<hours>',
    description: 'batch completion window (24h..336h on DashScope, 24h on OpenAI)',
    default: '24h',
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
  name: { type: 'string', arg: '<text>', description: 'job name (ds_name, at most 100 characters)' },
  description: {
    type: 'string',
    arg: '<text>',
    description: 'job description (ds_description, at most 200)',
  },
  mode: {
    type: 'string',
    arg: 'file|chat',
    description: 'file batches, or each line through the synchronous Batch Chat API',
    default: JOB_DEFAULTS.mode,
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

/** Per-file limits from the flags over the profile's; a dry run caps them at the test model's. */
export function resolvePlanLimits(flags: ParsedFlags, profile: Profile): Limits {
  const limits: Limits = {
    maxLines: intFlag(flags, 'max-lines') ?? profile.limits.maxLines,
    maxBytes: parsedFlag(flags, 'max-bytes', parseSize) ?? profile.limits.maxBytes,
    maxLineBytes: parsedFlag(flags, 'max-line-bytes', parseSize) ?? profile.limits.maxLineBytes,
  };
  if (limits.maxBytes < 2) throw new UsageError('--max-bytes: must be at least 2 bytes');
  if (limits.maxLineBytes < 1) throw new UsageError('--max-line-bytes: must be at least 1 byte');
  if (boolFlag(flags, 'dry-run')) {
    limits.maxLines = Math.min(limits.maxLines, DRY_RUN.limits.maxLines);
    limits.maxBytes = Math.min(limits.maxBytes, DRY_RUN.limits.maxBytes);
    limits.maxLineBytes = Math.min(limits.maxLineBytes, DRY_RUN.limits.maxLineBytes);
  }
  return limits;
}

/** The endpoint flag, checked against the endpoints batchpilot knows. */
export function endpointFromFlags(flags: ParsedFlags): string {
  const endpoint = stringFlag(flags, 'endpoint') ?? '/v1/chat/completions';
  if (!(ENDPOINTS as readonly string[]).includes(endpoint)) {
    throw new UsageError(`--endpoint: "${endpoint}" is not one of ${ENDPOINTS.join(', ')}`);
  }
  return endpoint;
}

/**
 * Everything planInput needs from the flags for `input` (an absolute path): endpoint, limits, CSV
 * conversion (for .csv), and the rewrite for --dry-run and --thinking.
 */
export function planOptionsFromFlags(
  input: string,
  flags: ParsedFlags,
  profile: Profile,
): Omit<PlanOptions, 'outDir' | 'onProgress' | 'maxProblems'> {
  const endpoint = endpointFromFlags(flags);
  const opts: Omit<PlanOptions, 'outDir' | 'onProgress' | 'maxProblems'> = {
    input,
    endpoint,
    limits: resolvePlanLimits(flags, profile),
  };
  const model = stringFlag(flags, 'model');
  if (path.extname(input).toLowerCase() === '.csv') {
    if (!model)
      throw new UsageError(`${path.basename(input)} is CSV: --model is required to convert its rows`);
    const system = stringFlag(flags, 'system');
    opts.csv = {
      idColumn: stringFlag(flags, 'id-column') ?? 'custom_id',
      promptColumn: stringFlag(flags, 'prompt-column') ?? 'prompt',
      model,
      ...(system !== undefined ? { system } : {}),
    };
  } else {
    for (const f of ['model', 'system', 'prompt-column', 'id-column']) {
      if (stringFlag(flags, f) !== undefined) {
        throw new UsageError(`--${f} converts CSV input (a .csv file); ${path.basename(input)} is JSONL`);
      }
    }
  }
  const thinking = stringFlag(flags, 'thinking');
  if (thinking !== undefined && thinking !== 'on' && thinking !== 'off' && thinking !== 'keep') {
    throw new UsageError(`--thinking: "${thinking}" must be on, off or keep`);
  }
  const budget = intFlag(flags, 'thinking-budget');
  const rewrite: NonNullable<PlanOptions['rewrite']> = {};
  if (thinking !== undefined && thinking !== 'keep') rewrite.thinking = thinking;
  if (budget !== undefined) rewrite.thinkingBudget = budget;
  if (boolFlag(flags, 'dry-run')) {
    if (endpoint !== '/v1/chat/completions') {
      throw new UsageError(`--dry-run: the test model only serves chat requests, not ${endpoint}`);
    }
    rewrite.model = DRY_RUN.model;
    rewrite.url = DRY_RUN.endpoint;
  }
  if (Object.keys(rewrite).length > 0) opts.rewrite = rewrite;
  return opts;
}
