// Builds the provider client for the worker. The key is only ever sent to the configured base URL.
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { tracedFetch } from './provider-spans.ts';

export interface ProviderClientOptions {
  baseUrl: string;
  apiKey: string | undefined;
  /** Per-request timeout; raised for Batch Chat, whose server holds connections up to 3,600 s. */
  timeoutMs?: number;
  /** Each request becomes a span (provider-spans.ts); only when tracing is on. */
  traced?: boolean;
}

// The SDK never retries (maxRetries 0): Temporal's retry policy is the one retry loop. SDK retries
// nested inside it would multiply attempts (3 SDK tries for every Temporal attempt), would spend the
// account's quota behind the fleet's pacing (a retried activity goes back through its rate-limited
// task queue, an SDK retry does not), and would hide each 429 from the failure that carries its
// Retry-After to Temporal. A retried create could also make a second billable batch. The price: a
// throttled multi-call activity (collection, deletes) starts over, which pacing makes rare.
export function createProviderClient(opts: ProviderClientOptions): OpenAI {
  return new OpenAI({
    baseURL: opts.baseUrl,
    // The emulator accepts any bearer token; openai-node insists on one.
    apiKey: opts.apiKey ?? 'emulator',
    maxRetries: 0,
    timeout: opts.timeoutMs ?? 120_000,
    ...(opts.traced ? { fetch: tracedFetch(globalThis.fetch) } : {}),
  });
}

/** Batch Chat holds a connection up to 3,600 s: the SDK's timeout and undici's header and body
 * timeouts (about 5 minutes by default) are all raised to match. */
export const BATCH_CHAT_TIMEOUT_MS = 3_600_000;

export function createBatchChatClient(opts: Omit<ProviderClientOptions, 'timeoutMs'>): OpenAI {
  const dispatcher = new Agent({
    headersTimeout: BATCH_CHAT_TIMEOUT_MS + 60_000,
    bodyTimeout: BATCH_CHAT_TIMEOUT_MS + 60_000,
  });
  return new OpenAI({
    baseURL: opts.baseUrl,
    apiKey: opts.apiKey ?? 'emulator',
    maxRetries: 0,
    timeout: BATCH_CHAT_TIMEOUT_MS,
    fetch: opts.traced
      ? tracedFetch(undiciFetch as unknown as typeof fetch)
      : (undiciFetch as unknown as typeof fetch),
    fetchOptions: { dispatcher } as unknown as NonNullable<
      ConstructorParameters<typeof OpenAI>[0]
    >['fetchOptions'],
  });
}
