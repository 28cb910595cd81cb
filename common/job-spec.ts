// The one schema of a job's options. Every way a job is described — the CLI's flags (`validate`,
// `plan`, `run`, `start`, `schedule create`), the JSON typed into the Temporal Web UI's Start
// Workflow form, a schedule's stored arguments — is checked here and completed with the same
// defaults, and the planner's options are derived from the result in one place (`planOptionsOf`).
// Provider facts (limits, windows, the dry-run model) come from the profile table.
import { z } from 'zod';
import {
  CHAT_DEFAULTS,
  CSV_COLUMN_DEFAULTS,
  JOB_DEFAULTS,
  type CsvSpec,
  type JobOptions,
} from './job-types.ts';
import { parsePriceTable } from './pricing.ts';
import {
  BATCH_CHAT_LIMITS,
  BATCH_METADATA_LIMITS,
  DRY_RUN,
  ENDPOINTS,
  type Limits,
  type Profile,
} from './profiles.ts';

/** A job option that is wrong: `field` is its path in the options (`limits.maxLines`). */
export class JobSpecError extends Error {
  override name = 'JobSpecError';
  readonly field: string;
  readonly problem: string;
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}

/** A positive whole number of `what`, with one message for every way it can be wrong. */
function count(what: string) {
  const error = `must be a positive whole number of ${what}`;
  return z.number({ error }).int(error).positive(error);
}

/** What a job may say; every field is optional and defaults below. Unknown fields are refused. */
const optionsSchema = z.strictObject(
  {
    endpoint: z
      .enum(ENDPOINTS, {
        error: (iss) => `${JSON.stringify(iss.input)} is not one of ${ENDPOINTS.join(', ')}`,
      })
      .default(JOB_DEFAULTS.endpoint),
    completionWindow: z
      .string()
      .regex(/^\d+(h|d)$/, 'must be hours or days, e.g. 24h, 48h, 7d')
      .default(JOB_DEFAULTS.completionWindow),
    limits: z
      .strictObject(
        {
          maxLines: count('lines').optional(),
          maxBytes: count('bytes').min(2, 'must be at least 2 bytes').optional(),
          maxLineBytes: count('bytes').optional(),
        },
        { error: 'must be an object, e.g. {"maxLines":10000}' },
      )
      .default({}),
    pollIntervalMs: count('milliseconds').optional(),
    maxAttempts: count('attempts').default(JOB_DEFAULTS.maxAttempts),
    maxInFlight: count('batches').default(JOB_DEFAULTS.maxInFlight),
    maxEnqueuedTokens: count('tokens').optional(),
    name: z
      .string()
      .max(
        BATCH_METADATA_LIMITS.name,
        `is sent as the batch's ds_name, which takes at most ${BATCH_METADATA_LIMITS.name} characters`,
      )
      .optional(),
    description: z
      .string()
      .max(
        BATCH_METADATA_LIMITS.description,
        `is sent as the batch's ds_description, which takes at most ${BATCH_METADATA_LIMITS.description} characters`,
      )
      .optional(),
    dryRun: z.boolean().default(JOB_DEFAULTS.dryRun),
    mode: z.enum(['file', 'chat'], { error: 'must be file or chat' }).default(JOB_DEFAULTS.mode),
    chat: z
      .strictObject(
        {
          concurrency: count('requests')
            .max(
              BATCH_CHAT_LIMITS.concurrency,
              `must be at most ${BATCH_CHAT_LIMITS.concurrency} (the Batch Chat API's pending requests per model)`,
            )
            .default(CHAT_DEFAULTS.concurrency),
          qps: count('requests a second')
            .max(
              BATCH_CHAT_LIMITS.qps,
              `must be at most ${BATCH_CHAT_LIMITS.qps} (the Batch Chat API's requests a second per account)`,
            )
            .default(CHAT_DEFAULTS.qps),
        },
        { error: 'must be an object, e.g. {"concurrency":64,"qps":100}' },
      )
      .optional(),
    deadline: z
      .union(
        [
          z.strictObject({
            at: z.string().refine((t) => Number.isFinite(Date.parse(t)), 'must be an ISO time'),
          }),
          z.strictObject({ afterMs: count('milliseconds') }),
        ],
        {
          error:
            'must be {"at":"2026-12-01T06:00:00Z"} (an ISO time) or {"afterMs":7200000} (from the job\'s start)',
        },
      )
      .optional(),
    chatLatencyMs: count('milliseconds').optional(),
    keepRemoteFiles: z.boolean().default(JOB_DEFAULTS.keepRemoteFiles),
    allowDuplicateBatches: z.boolean().optional(),
    thinking: z.enum(['on', 'off', 'keep'], { error: 'must be on, off or keep' }).optional(),
    thinkingBudget: count('tokens').optional(),
    csv: z
      .strictObject(
        {
          header: z.boolean().default(true),
          idColumn: z.string().min(1, 'must name a column').optional(),
          promptColumn: z.string().min(1, 'must name a column').optional(),
          model: z
            .string({ error: 'is required to convert CSV rows' })
            .min(1, 'is required to convert CSV rows'),
          system: z.string().optional(),
        },
        { error: 'must be an object, e.g. {"model":"qwen-plus"}' },
      )
      .optional(),
    prices: z.unknown().optional(),
    reuse: z.boolean({ error: 'must be true or false' }).optional(),
    reuseFrom: z
      .string({ error: 'must be a job output folder or a job id' })
      .min(1, 'must be a job output folder or a job id')
      .optional(),
    keepWorkDir: z.boolean().optional(),
  },
  { error: 'must be an object of job options, e.g. {"maxAttempts":3}' },
);

/** The options a job may give, as the Web UI form or a test writes them (all optional). */
export type JobOptionsInput = z.input<typeof optionsSchema>;
type ParsedOptions = z.output<typeof optionsSchema>;

/** The option names an object in the options takes ('' for the top level). */
function knownKeys(where: string): string[] {
  const top = optionsSchema.shape;
  const nested: Record<string, z.ZodType> = {
    limits: top.limits.unwrap(),
    chat: top.chat.unwrap(),
    csv: top.csv.unwrap(),
  };
  const schema = where === '' ? optionsSchema : nested[where];
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

const isCsv = (input: string): boolean => /\.csv$/i.test(input);

/**
 * Checks a job's options and completes them: defaults, the profile's limits, the dry-run clamp.
 * `input` is the job's input path (its extension says whether CSV options belong). Throws
 * JobSpecError naming the field and what to do.
 */
export function resolveJobOptions(raw: unknown, profile: Profile, input: string): JobOptions {
  const parsed = optionsSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || 'options';
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.join('.');
      throw new JobSpecError(
        [where, issue.keys[0]].filter(Boolean).join('.'),
        `is not a job option (${where ? `${where} takes` : 'options are'}: ${knownKeys(where).join(', ')})`,
      );
    }
    throw new JobSpecError(field, issue.message);
  }
  const o = parsed.data;
  const options: JobOptions = {
    endpoint: o.endpoint,
    completionWindow: windowWithin(o.completionWindow, profile),
    limits: limitsWithin(o.limits, profile, o.dryRun),
    maxAttempts: o.maxAttempts,
    maxInFlight: o.maxInFlight,
    dryRun: o.dryRun,
    mode: o.mode,
    keepRemoteFiles: o.keepRemoteFiles,
  };
  if (o.pollIntervalMs !== undefined) options.pollIntervalMs = o.pollIntervalMs;
  const maxEnqueuedTokens = o.maxEnqueuedTokens ?? profile.maxEnqueuedTokens;
  if (maxEnqueuedTokens !== undefined) options.maxEnqueuedTokens = maxEnqueuedTokens;
  if (o.name !== undefined) options.name = o.name;
  if (o.description !== undefined) options.description = o.description;
  if (o.thinking !== undefined && o.thinking !== 'keep') options.thinking = o.thinking;
  if (o.thinkingBudget !== undefined) options.thinkingBudget = o.thinkingBudget;
  if (o.keepWorkDir !== undefined) options.keepWorkDir = o.keepWorkDir;
  if (o.allowDuplicateBatches) options.allowDuplicateBatches = true;
  if (o.dryRun && o.endpoint !== '/v1/chat/completions')
    throw new JobSpecError('dryRun', `the test model only serves chat requests, not ${o.endpoint}`);
  if (o.mode === 'chat') {
    if (o.endpoint !== '/v1/chat/completions')
      throw new JobSpecError('mode', 'chat sends chat completions only: drop the endpoint or use mode file');
    if (o.dryRun) throw new JobSpecError('dryRun', 'validates batch files: use it with mode file');
    options.chat = o.chat ?? { ...CHAT_DEFAULTS };
  }
  if (o.deadline !== undefined) {
    if (o.mode === 'chat')
      throw new JobSpecError('deadline', 'switches batches to Batch Chat: use it with mode file');
    if (o.dryRun) throw new JobSpecError('deadline', 'has no use in a dry run: drop one of them');
    if (o.endpoint !== '/v1/chat/completions')
      throw new JobSpecError(
        'deadline',
        `falls back to Batch Chat, which serves chat completions only, not ${o.endpoint}`,
      );
    options.deadline = 'at' in o.deadline ? { at: new Date(o.deadline.at).toISOString() } : o.deadline;
    // The limits its Batch Chat fallback sends at.
    if (o.chat) options.chat = o.chat;
  }
  if (o.chatLatencyMs !== undefined) options.chatLatencyMs = o.chatLatencyMs;
  // Reuse is on by default and stays implicit, so the fingerprint of a job that says nothing about
  // it is what it was before reuse existed (a resumed folder still matches).
  if (o.reuse === false) {
    if (o.reuseFrom !== undefined)
      throw new JobSpecError(
        'reuseFrom',
        'takes answers from a job, which reuse false turns off: drop one of them',
      );
    options.reuse = false;
  }
  if (o.reuseFrom !== undefined) options.reuseFrom = o.reuseFrom;
  const csv = csvOf(o.csv, input);
  if (csv) options.csv = csv;
  if (o.prices !== undefined) {
    try {
      options.prices = parsePriceTable(o.prices);
    } catch (err) {
      throw new JobSpecError('prices', (err as Error).message);
    }
  }
  return options;
}

/** The CSV conversion a .csv input needs (columns defaulted), refused for any other input. */
function csvOf(asked: ParsedOptions['csv'], input: string): CsvSpec | undefined {
  if (!isCsv(input)) {
    if (asked) throw new JobSpecError('csv', `converts CSV input (a .csv file); ${input} is JSONL`);
    return undefined;
  }
  if (!asked) throw new JobSpecError('csv.model', `${input} is CSV: a model is required to convert its rows`);
  const columns = asked.header ? CSV_COLUMN_DEFAULTS.header : CSV_COLUMN_DEFAULTS.noHeader;
  const csv = {
    // A header is the default and stays implicit, so a headed CSV's job fingerprint has no new key.
    ...(asked.header ? {} : { header: false }),
    idColumn: asked.idColumn ?? columns.idColumn,
    promptColumn: asked.promptColumn ?? columns.promptColumn,
    model: asked.model,
    ...(asked.system !== undefined ? { system: asked.system } : {}),
  };
  if (!asked.header)
    for (const key of ['idColumn', 'promptColumn'] as const)
      if (!/^[1-9]\d*$/.test(csv[key]))
        throw new JobSpecError(
          `csv.${key}`,
          `"${csv[key]}" must be a column position (1, 2, …) when the CSV has no header`,
        );
  return csv;
}

function windowWithin(text: string, profile: Profile): string {
  const m = /^(\d+)(h|d)$/.exec(text)!;
  const hours = Number(m[1]) * (m[2] === 'd' ? 24 : 1);
  const { min, max } = profile.windowHours;
  if (hours < min || hours > max)
    throw new JobSpecError(
      'completionWindow',
      `${text} is outside what ${profile.name} accepts (${min === max ? `${min}h only` : `${min}h to ${max}h`})`,
    );
  return text;
}

const LIMIT_UNITS: Record<keyof Limits, string> = {
  maxLines: 'lines per file',
  maxBytes: 'bytes per file',
  maxLineBytes: 'bytes per line',
};

/**
 * The profile's limits, lowered where the job asks. Above the profile's the provider would refuse
 * the file, so only `custom` (a service whose limits batchpilot does not know) may raise them. A
 * dry run caps them at what the test model accepts.
 */
function limitsWithin(asked: Partial<Limits>, profile: Profile, dryRun: boolean): Limits {
  const limits: Limits = { ...profile.limits };
  for (const key of Object.keys(LIMIT_UNITS) as (keyof Limits)[]) {
    const value = asked[key];
    if (value === undefined) continue;
    if (value > profile.limits[key] && profile.name !== 'custom')
      throw new JobSpecError(
        `limits.${key}`,
        `${value} is above ${profile.name}'s limit of ${profile.limits[key]} ${LIMIT_UNITS[key]}, which it would refuse: use at most ${profile.limits[key]} (only the custom profile may raise it)`,
      );
    limits[key] = value;
  }
  if (dryRun)
    for (const key of Object.keys(LIMIT_UNITS) as (keyof Limits)[])
      limits[key] = Math.min(limits[key], DRY_RUN.limits[key]);
  return limits;
}

/** What the planner needs from a job's options for `input` (an absolute path). */
export interface PlannerOptions {
  input: string;
  endpoint: string;
  limits: Limits;
  csv?: NonNullable<JobOptions['csv']>;
  rewrite?: { model?: string; url?: string; thinking?: 'on' | 'off'; thinkingBudget?: number };
}

/**
 * The one translation from a job's options to the planner's: lines are checked against the job's
 * endpoint, then rewritten for the dry run (the test model and its endpoint) and for thinking.
 */
export function planOptionsOf(input: string, o: JobOptions): PlannerOptions {
  const rewrite: NonNullable<PlannerOptions['rewrite']> = {
    ...(o.dryRun ? { model: DRY_RUN.model, url: DRY_RUN.endpoint } : {}),
    ...(o.thinking && o.thinking !== 'keep' ? { thinking: o.thinking } : {}),
    ...(o.thinkingBudget !== undefined ? { thinkingBudget: o.thinkingBudget } : {}),
  };
  return {
    input,
    endpoint: o.endpoint,
    limits: o.limits,
    ...(o.csv ? { csv: o.csv } : {}),
    ...(Object.keys(rewrite).length > 0 ? { rewrite } : {}),
  };
}
