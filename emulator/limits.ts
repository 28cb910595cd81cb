// The emulated provider's own limits (docs/providers.md). Deliberately not read from common/profiles.ts:
// the emulator stands in for the provider, so a wrong limit in the orchestrator must not be shared.

export type EmulatedProfile = 'dashscope' | 'openai';

export interface EmulatorLimits {
  /** Bytes per uploaded file; more is 400 BadRequest.TooLarge. */
  maxFileBytes: number;
  /** Lines per batch input file; more fails validation with too_many_tasks. */
  maxLines: number;
  /** Bytes per request line; more fails validation. */
  maxLineBytes: number;
  /** Lines and bytes per file on the free dry-run endpoint `/v1/chat/ds-test`. */
  testMaxLines: number;
  testMaxBytes: number;
  /** Files an account may keep (inputs and results); DashScope never expires them, so an
   * orchestrator that never deletes its files eventually hits this. */
  maxFiles: number;
  maxStoredBytes: number;
}

export interface ProfileRules {
  limits: EmulatorLimits;
  /** Completion windows accepted, in hours, inclusive; DashScope also takes days (`14d`). */
  windowHours: { min: number; max: number };
  windowDays: boolean;
  /** DashScope's list filters (`ds_name`, `input_file_ids`, `status`, `create_after/before`). */
  listFilters: boolean;
  endpoints: readonly string[];
  /** OpenAI refuses to hand back the content of `purpose: batch` input files. */
  inputContentReadable: boolean;
}

const MB = 1_000_000;

export const PROFILE_RULES: Record<EmulatedProfile, ProfileRules> = {
  dashscope: {
    limits: {
      maxFileBytes: 500 * MB,
      maxLines: 50_000,
      maxLineBytes: 6 * MB,
      testMaxLines: 100,
      testMaxBytes: 1 * MB,
      maxFiles: 10_000,
      maxStoredBytes: 100_000 * MB,
    },
    windowHours: { min: 24, max: 336 },
    windowDays: true,
    listFilters: true,
    endpoints: ['/v1/chat/completions', '/v1/embeddings', '/v1/chat/ds-test'],
    inputContentReadable: true,
  },
  openai: {
    limits: {
      maxFileBytes: 200 * MB,
      maxLines: 50_000,
      maxLineBytes: 6 * MB,
      testMaxLines: 100,
      testMaxBytes: 1 * MB,
      // OpenAI bounds storage per project (2.5 TB), not the number of files.
      maxFiles: Number.MAX_SAFE_INTEGER,
      maxStoredBytes: 2_500_000 * MB,
    },
    windowHours: { min: 24, max: 24 },
    windowDays: false,
    listFilters: false,
    endpoints: ['/v1/chat/completions', '/v1/embeddings'],
    inputContentReadable: false,
  },
};

/** The test model of DashScope's free dry run. */
export const TEST_MODEL = 'batch-test-model';
export const TEST_ENDPOINT = '/v1/chat/ds-test';

/**
 * Which model names exist. Rule: the families the two providers serve (qwen*, qwq*, qvq*,
 * deepseek*, kimi*, glm*, text-embedding*, gpt-*, o1..o9*, chatgpt*) plus `batch-test-model`;
 * anything else is `model_not_found`, e.g. `no-such-model` or an empty name.
 */
export function modelExists(model: string): boolean {
  return (
    model === TEST_MODEL ||
    /^(qwen|qwq|qvq|deepseek|kimi|glm|text-embedding|gpt-|chatgpt|o[1-9])[\w.:-]*$/i.test(model)
  );
}

/** Whether a model thinks when `enable_thinking` is absent (qwen3.5+ and the reasoning families). */
export function thinksByDefault(model: string): boolean {
  return /^(qwen3\.[5-9]|qwq|qvq|deepseek-r)/i.test(model);
}
