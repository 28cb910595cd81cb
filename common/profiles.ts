// The one table of provider facts (docs/providers.md): base URLs, per-file limits, accepted
// completion windows, which key variable a profile falls back to, the Batch Chat API's caps and the
// batch metadata lengths, and the request rate limits per call class. Everything else reads them here.
import { DASHSCOPE_RATE_LIMITS, type RateLimits } from './rate-limits.ts';

export const PROFILE_NAMES = ['dashscope-intl', 'dashscope-cn', 'openai', 'custom', 'emulator'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export interface Limits {
  /** Lines per input file. */
  maxLines: number;
  /** Bytes per input file. */
  maxBytes: number;
  /** Bytes per request line. */
  maxLineBytes: number;
}

export interface Profile {
  name: ProfileName;
  baseUrl: string | undefined;
  limits: Limits;
  /** Completion windows in hours the provider accepts, inclusive. */
  windowHours: { min: number; max: number };
  /** Whether `batches.list` takes DashScope's filters (`input_file_ids`, `status`, `ds_name`, …). */
  listFilters: boolean;
  /** Environment variable the API key falls back to when BATCHPILOT_API_KEY is unset. */
  keyFallback: 'DASHSCOPE_API_KEY' | 'OPENAI_API_KEY' | undefined;
  /** Base URL of the synchronous Batch Chat API, where the provider has one. */
  batchChatBaseUrl?: string;
  /**
   * Input tokens a model may have enqueued in batches at once. OpenAI's depends on the account's
   * usage tier and the model, and DashScope publishes none, so no profile sets it: the job's
   * `maxEnqueuedTokens` says it for the account at hand.
   */
  maxEnqueuedTokens?: number;
  /**
   * Requests a minute per call class the provider publishes; undefined when it publishes none (then
   * the fleet does not pace itself unless BATCHPILOT_RATE_LIMITS gives figures).
   */
  rateLimits: RateLimits | undefined;
}

const MB = 1_000_000;
const DASHSCOPE_LIMITS: Limits = { maxLines: 50_000, maxBytes: 500 * MB, maxLineBytes: 6 * MB };

export const PROFILES: Record<ProfileName, Profile> = {
  'dashscope-intl': {
    name: 'dashscope-intl',
    baseUrl: 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1',
    limits: DASHSCOPE_LIMITS,
    windowHours: { min: 24, max: 336 },
    listFilters: true,
    keyFallback: 'DASHSCOPE_API_KEY',
    rateLimits: DASHSCOPE_RATE_LIMITS,
  },
  'dashscope-cn': {
    name: 'dashscope-cn',
    baseUrl: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
    limits: DASHSCOPE_LIMITS,
    windowHours: { min: 24, max: 336 },
    listFilters: true,
    keyFallback: 'DASHSCOPE_API_KEY',
    batchChatBaseUrl: 'https://batch.dashscope.aliyuncs.com/compatible-mode/v1',
    rateLimits: DASHSCOPE_RATE_LIMITS,
  },
  openai: {
    name: 'openai',
    baseUrl: 'https://api.openai.com/v1',
    limits: { maxLines: 50_000, maxBytes: 200 * MB, maxLineBytes: 6 * MB },
    windowHours: { min: 24, max: 24 },
    listFilters: false,
    keyFallback: 'OPENAI_API_KEY',
    // OpenAI publishes batch limits in enqueued tokens per model, not requests per route.
    rateLimits: undefined,
  },
  custom: {
    name: 'custom',
    baseUrl: undefined,
    limits: DASHSCOPE_LIMITS,
    windowHours: { min: 24, max: 336 },
    listFilters: false,
    keyFallback: 'OPENAI_API_KEY',
    rateLimits: undefined,
  },
  emulator: {
    name: 'emulator',
    baseUrl: 'http://127.0.0.1:8787/v1',
    limits: DASHSCOPE_LIMITS,
    windowHours: { min: 24, max: 336 },
    listFilters: true,
    keyFallback: undefined,
    // It plays DashScope, and enforces DashScope's limits when asked to (`rateLimits: "published"`).
    rateLimits: DASHSCOPE_RATE_LIMITS,
  },
};

/** DashScope's free validation model and its endpoint (dry run). */
export const DRY_RUN = {
  model: 'batch-test-model',
  endpoint: '/v1/chat/ds-test',
  limits: { maxLines: 100, maxBytes: 1 * MB, maxLineBytes: 1 * MB } satisfies Limits,
  maxConcurrentBatches: 2,
} as const;

export const ENDPOINTS = ['/v1/chat/completions', '/v1/embeddings', '/v1/chat/ds-test'] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

/** The synchronous Batch Chat API's caps: pending requests per model and requests per second per account. */
export const BATCH_CHAT_LIMITS = { concurrency: 10_000, qps: 1_000 } as const;

/** Batch metadata lengths: `ds_name` and `ds_description` in characters. */
export const BATCH_METADATA_LIMITS = { name: 100, description: 200 } as const;
