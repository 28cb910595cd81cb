// Small typed objects that cross the workflow/activity wall. They hold references (paths, ids,
// counts), never request lines or results: Temporal payloads must stay far below 2 MiB.
import type { DeadlineSpec, DeadlineSummary, DeadlineView } from './deadline.ts';
import type { Cost, PriceTable, Usage } from './pricing.ts';
import type { Limits } from './profiles.ts';
import type { UnitTokens } from './tokens.ts';

export interface JobOptions {
  endpoint: string;
  completionWindow: string;
  limits: Limits;
  /** Fixed poll interval; undefined draws a random 60–120 s per poll. */
  pollIntervalMs?: number;
  maxAttempts: number;
  maxInFlight: number;
  /**
   * Estimated input tokens a model may have in this job's batches at once (the provider's
   * enqueued-token limit, or less); unset: no limit. A unit larger than it still goes alone.
   */
  maxEnqueuedTokens?: number;
  name?: string;
  description?: string;
  dryRun: boolean;
  mode: 'file' | 'chat';
  /** Batch Chat mode: requests waiting at once and started per second (also a deadline's switch). */
  chat?: { concurrency: number; qps: number };
  /**
   * `--deadline`: when the batches would not finish in time, what is left goes through Batch Chat
   * (workflows/job-deadline.ts). A duration counts from the job's start.
   */
  deadline?: DeadlineSpec;
  /** The time one Batch Chat request is assumed to take, for planning a deadline's switch. */
  chatLatencyMs?: number;
  keepRemoteFiles: boolean;
  thinking?: 'on' | 'off' | 'keep';
  thinkingBudget?: number;
  /**
   * CSV conversion: with a header, the columns are names; without one (`header: false`, the
   * providers' own two-column layout), 1-based positions.
   */
  csv?: CsvSpec;
  /** `--prices`: the summary reports the cost at the batch discount. */
  prices?: PriceTable;
  /**
   * `--no-reuse`: this job neither takes answers from earlier jobs nor stores its own. Absent: on
   * (where the worker has an answer store).
   */
  reuse?: false;
  /** `--reuse-from`: take answers only from this job (its output folder or its workflow id). */
  reuseFrom?: string;
  /** Keep `<out>/.batchpilot/` after success (for debugging); removed by default. */
  keepWorkDir?: boolean;
  /**
   * On a provider that cannot list batches, re-send a create whose outcome is unknown (a timeout
   * or a reset after sending) instead of stopping the shard: may pay for a second batch.
   */
  allowDuplicateBatches?: boolean;
}

export interface CsvSpec {
  /** False: no header row, the columns are 1-based positions. Absent means true. */
  header?: boolean;
  idColumn: string;
  promptColumn: string;
  model: string;
  system?: string;
}

/**
 * What a job does where its options are silent. The job spec (common/job-spec.ts) applies them,
 * --help shows them, and tests and benchmarks build their options from them. Limits come from the
 * provider profile (common/profiles.ts).
 */
export const JOB_DEFAULTS = {
  endpoint: '/v1/chat/completions',
  completionWindow: '24h',
  maxAttempts: 3,
  maxInFlight: 50,
  dryRun: false,
  mode: 'file',
  keepRemoteFiles: false,
} as const satisfies Partial<JobOptions>;

/** `--mode chat` where its options are silent: requests waiting at once and started per second. */
export const CHAT_DEFAULTS = { concurrency: 64, qps: 100 } as const;

/**
 * The Batch Chat answer time a deadline's switch is planned with when the job does not say: the API
 * queues each request before answering it, so this is well above a real-time call's.
 */
export const CHAT_LATENCY_DEFAULT_MS = 30_000;

/** CSV columns where the options are silent: names with a header, the providers' layout without. */
export const CSV_COLUMN_DEFAULTS = {
  header: { idColumn: 'custom_id', promptColumn: 'prompt' },
  noHeader: { idColumn: '1', promptColumn: '2' },
} as const;

export interface JobInput {
  /** Input path as the user gave it; the worker resolves it under its data root. */
  input: string;
  /** Output folder, likewise resolved under the data root. */
  outDir: string;
  options: JobOptions;
  /** Set by the client when the server has batchpilot's search attributes registered. */
  searchAttributes?: boolean;
  /** IANA time zone for `{date}`/`{datetime}` in scheduled templates (UTC by default). */
  timezone?: string;
  /** `--force`: give up the job the output folder holds and start afresh. */
  force?: boolean;
}

/**
 * What is wrong with a job's input at the top level (the paths and the options' type), or
 * undefined. Pure, so the workflow can refuse a hand-typed input before anything runs; the options
 * themselves are checked by the job spec in the plan activity.
 */
export function jobInputProblem(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return 'the job input must be a JSON object like {"input":"in.jsonl","outDir":"out"}';
  const job = raw as Record<string, unknown>;
  for (const key of ['input', 'outDir'] as const)
    if (typeof job[key] !== 'string' || job[key] === '')
      return `the job input's "${key}" must be a path (a string), e.g. {"input":"in.jsonl","outDir":"out"}`;
  const options = job.options;
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options)))
    return `the job input's "options" must be an object of job options, e.g. {"maxAttempts":3}`;
  if (job.timezone !== undefined && typeof job.timezone !== 'string')
    return `the job input's "timezone" must be an IANA time zone name, e.g. "UTC"`;
  return undefined;
}

/** Where the job keeps its intermediate files: `<outDir>/.batchpilot`. */
export interface JobPaths {
  input: string;
  outDir: string;
  workDir: string;
}

export interface PlanSummary {
  paths: JobPaths;
  lines: number;
  valid: number;
  rejected: number;
  /** Lines per round-1 shard, by shard index. */
  shardLines: number[];
  /** Model and estimated input tokens per round-1 shard (absent in plans made before they were). */
  shardTokens?: UnitTokens[];
  /** Models in the plan, for the Web UI summary. */
  models: string[];
  /** A resumed job's last packed round (2 or later) and the lines settled before it. */
  resumeAt?: { round: number; unitLines: number[]; settled: { succeeded: number; failed: number } };
  /** The job already completed in this folder: its summary, and nothing is sent again. */
  finished?: JobSummary;
  /** The folder held this job before (a resume): its batch keys may already be at the provider. */
  resumed?: boolean;
  /** With reuse on: lines answered from earlier jobs' stored answers, and what those had cost. */
  reused?: { lines: number; usageByModel: Record<string, Usage> };
  /**
   * The job's options as the job spec completed them (defaults, the worker's profile limits): the
   * workflow runs with these. Optional: recorded histories and work folders may hold plans without
   * it, and the workflow then keeps the options it was started with.
   */
  options?: JobOptions;
}

/**
 * One batch's worth of lines in one round. The code calls it a unit everywhere, and keeps "shard"
 * for the plan's round-1 pieces of the input, under which outcomes are filed: a round-1 unit is a
 * shard; a unit of a later round packs retry lines of many shards. What users see calls every unit
 * a shard (its file `round-<r>/shard-NNNNN.jsonl`, the `shardBatch` workflow, `status`, the Web UI),
 * and the recorded names stay as they are (`shards` in progress, `unit` in failures and signals).
 */
export interface Unit {
  round: number;
  index: number;
  lines: number;
}

/** A provider batch's status, as the Batch API names them. */
export type BatchStatus =
  | 'validating'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'failed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

export const BATCH_STATUSES: readonly BatchStatus[] = [
  'validating',
  'in_progress',
  'finalizing',
  'completed',
  'failed',
  'expired',
  'cancelling',
  'cancelled',
];

/** The part of a provider batch the workflow needs; `errors` capped to keep payloads small. */
export interface BatchView {
  id: string;
  status: BatchStatus;
  outputFileId: string | null;
  errorFileId: string | null;
  requestCounts: { total: number; completed: number; failed: number };
  errors: { code: string; message: string; line: number | null }[];
  /** Set by createBatch when the provider could not be asked for existing batches. */
  unavailableLookups?: ProviderLookup[];
}

/**
 * A unit's status: its own steps around the batch, and while the batch runs, the batch's status as
 * the provider reports it.
 */
export type UnitStatus =
  | 'pending'
  | 'uploading'
  /** The provider refused the batch for its enqueued-token limit: waiting to send it again. */
  | 'waiting'
  | 'collecting'
  | 'done'
  | BatchStatus;

export interface UnitCounts {
  /** Lines that succeeded in this unit's batch. */
  succeeded: number;
  /** Lines that failed for good (permanent error, or retryable with no attempts left). */
  failed: number;
  /** Lines to resubmit in the next round. */
  retry: number;
}

/** What the provider said when a call failed, as an activity failure's details. */
export interface ProviderFailureDetails {
  code: string;
  message: string;
  status_code?: number;
  /** The call that failed, in words: `create batch`, `look up uploaded files`, … */
  call?: string;
  /** The provider's base URL without credentials. */
  baseUrl?: string;
  /** Epoch ms of the first failed call of a provider that has stayed unreachable. */
  unreachableSince?: number;
}

/**
 * A failure as the user reads it in summary.json, `status` and the CLI: which unit (absent for the
 * whole job), the provider's code and message, its HTTP status and the call, when known.
 */
export interface FailureInfo {
  /** `shard-<n>/round-<r>`. */
  unit?: string;
  code: string;
  message: string;
  status_code?: number;
  call?: string;
  batchId?: string;
  /** The provider's base URL without credentials. */
  baseUrl?: string;
}

/** A line of an error file whose custom_id is in no line of the batch: the batch's own failure. */
export interface UnattributedError {
  custom_id: string | null;
  code: string;
  message: string;
  status_code: number | null;
}

/** Provider list routes a worker found missing (404/405): lookups that cannot be made. */
export type ProviderLookup = 'GET /files' | 'GET /batches';

/** What a shard workflow reports when it ends. */
export interface UnitResult extends UnitCounts {
  unit: Unit;
  batchId: string | null;
  batchStatus: string | null;
  /** File-level errors of a `failed` batch (provider's errors.data), capped. */
  fileErrors: { code: string; message: string; line: number | null }[];
  /** Error-file lines naming no line of the unit (capped). */
  unattributed?: UnattributedError[];
  /** Lookups this unit could not make. */
  unavailableLookups?: ProviderLookup[];
  /** Batches the provider refused for its enqueued-token limit that the unit waited out and resent. */
  tokenLimitWaits?: number;
  /** Lines the job's own cancel stopped (inside `failed`): a deadline's switch sends them by chat. */
  cancelled?: number;
  /** Tokens the unit's answered lines used (its collection's sum). */
  usage?: Usage;
}

/** A shard workflow that ended without a result: its unit and why (sent to the job, or found). */
export interface UnitFailure {
  unit: Unit;
  failure: FailureInfo;
  /** It ended because it was cancelled: its lines are cancelled, not failed. */
  cancelled?: boolean;
}

/** A shard workflow found closed by the job's check: its result, or why it has none. */
export type UnitEnd = { result: UnitResult } | UnitFailure;

/** Live state of a unit, sent by the shard workflow to the job as a signal. */
export interface UnitUpdate {
  unit: Unit;
  status: UnitStatus;
  batchId?: string;
  requestCounts?: { total: number; completed: number; failed: number };
  /** Set while the unit's provider calls keep failing past the worker's threshold. */
  unreachable?: ProviderUnreachable;
}

/** A provider that has not answered for a while: where, and since when (epoch ms). */
export interface ProviderUnreachable {
  url: string;
  since: number;
  message: string;
}

export interface MergeSummary {
  /** Lines answered from earlier jobs (inside `succeeded`); absent when the plan reused none. */
  reused?: number;
  succeeded: number;
  failed: number;
  rejected: number;
  usage: Usage;
  usageByModel: Record<string, Usage>;
}

export interface JobSummary {
  workflowId: string;
  status: 'completed' | 'cancelled' | 'failed';
  input: string;
  /** `reused`: lines answered from earlier jobs (inside `succeeded`), when reuse was on. */
  lines: { total: number; succeeded: number; failed: number; rejected: number; reused?: number };
  /** What reused answers saved: the tokens they had cost, and at `prices` their cost. */
  saved?: { usage: Usage; usageByModel: Record<string, Usage>; cost?: Cost };
  shards: number;
  batches: number;
  rounds: number;
  usage: Usage;
  usageByModel: Record<string, Usage>;
  cost?: Cost;
  startedAt: string;
  finishedAt: string;
  outDir: string;
  /** Why things failed: job-level (no `unit`) and per unit; capped at 50. */
  failures?: FailureInfo[];
  /** Failed batches and error-file lines naming no line, counted by the provider's code. */
  batchFailures?: Record<string, number>;
  /** Provider lookups that were unavailable and what that meant for exactly-once. */
  providerLookups?: { unavailable: ProviderLookup[]; meaning: string[] };
  /**
   * Batches the provider refused for its enqueued-token limit (`token_limit_exceeded`) that waited
   * and were sent again: not line failures, and no retry round was spent on them.
   */
  tokenLimitWaits?: number;
  /** `--deadline`: when the job switched to Batch Chat, and which lines went which way. */
  deadline?: DeadlineSummary;
}

/** A unit's live state in the job (progress calls these `shards`, as users do). */
export interface UnitProgress {
  round: number;
  index: number;
  status: UnitStatus;
  batchId: string | null;
  lines: number;
  completed: number;
  succeeded: number;
  failed: number;
  retry: number;
  unreachable?: ProviderUnreachable;
  /** The unit's model and estimated input tokens, for admission by enqueued tokens. */
  model?: string;
  tokens?: number;
}

/** What the `progress` query returns. */
export interface JobProgress {
  workflowId: string;
  phase: 'planning' | 'running' | 'merging' | 'done' | 'cancelling';
  round: number;
  input: string;
  outDir: string;
  /** Models in the plan (one per group of shards). */
  models: string[];
  lines: {
    total: number;
    valid: number;
    rejected: number;
    succeeded: number;
    failed: number;
    pendingRetry: number;
  };
  shards: UnitProgress[];
  batchesCreated: number;
  startedAt: string;
  /** Failures so far (units that failed, failed batches). */
  failures?: FailureInfo[];
  /** Set while some unit's provider calls keep failing past the worker's threshold. */
  providerUnreachable?: ProviderUnreachable;
  /** Refused batches waited out and sent again so far (see JobSummary.tokenLimitWaits). */
  tokenLimitWaits?: number;
  /** `--deadline`: the deadline, the planned switch to Batch Chat, and the switch once made. */
  deadline?: DeadlineView;
}
