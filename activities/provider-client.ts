// Builds the provider client for the worker. The key is only ever sent to the configured base URL.
import OpenAI from 'openai';

export interface ProviderClientOptions {
  baseUrl: string;
  apiKey: string | undefined;
  /** Per-request timeout; raised for Batch Chat, whose server holds connections up to 3,600 s. */
  timeoutMs?: number;
}

export function createProviderClient(opts: ProviderClientOptions): OpenAI {
  return new OpenAI({
    baseURL: opts.baseUrl,
    // The emulator accepts any bearer token; openai-node insists on one.
    apiKey: opts.apiKey ?? 'emulator',
    maxRetries: 0,
    timeout: opts.timeoutMs ?? 120_000,
  });
}
