// The one place where provider (openai-node) errors become Temporal failures: 4xx other than
// 408/409/429 never retry; 429 waits as long as Retry-After says; 5xx and connection errors retry
// with the activity's backoff.
import { ApplicationFailure } from '@temporalio/common';
import { APIConnectionError, APIError } from 'openai';

/** Parses Retry-After (seconds or an HTTP date) or retry-after-ms into milliseconds. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = headers.get('retry-after');
  if (!ra) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra)) return Math.round(Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Turns any error from a provider call into an ApplicationFailure with explicit retry semantics. */
export function toFailure(err: unknown, what: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof APIConnectionError) {
    return ApplicationFailure.retryable(
      `${what}: cannot reach the provider (${err.message})`,
      'ProviderUnreachable',
    );
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const message = `${what}: provider answered ${status}: ${err.message}`;
    if (status === 429) {
      const delay = retryAfterMs(err.headers as Headers | undefined);
      return ApplicationFailure.create({
        message,
        type: 'ProviderRateLimited',
        ...(delay !== undefined ? { nextRetryDelay: Math.max(delay, 100) } : {}),
      });
    }
    if (status >= 500 || status === 408 || status === 409) {
      return ApplicationFailure.retryable(message, `ProviderHttp${status}`);
    }
    const hint =
      status === 401 ? " (check BATCHPILOT_API_KEY and that the key belongs to this region's base URL)" : '';
    return ApplicationFailure.nonRetryable(message + hint, `ProviderHttp${status}`);
  }
  const e = err as Error;
  return ApplicationFailure.retryable(`${what}: ${e?.message ?? String(err)}`, e?.name ?? 'Error');
}

/** Runs a provider call and translates its failure. */
export async function providerCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFailure(err, what);
  }
}

/** The HTTP status of a provider error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof APIError && typeof err.status === 'number' ? err.status : undefined;
}
