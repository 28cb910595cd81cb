// The one place where provider (openai-node) errors become Temporal failures: 4xx other than
// 408/409/429 never retry; 429 waits as long as Retry-After says; 5xx and connection errors retry
// with the activity's backoff. Every failure carries what the user needs to act on it (the call,
// the provider's status, code and message, the base URL without credentials) as its details.
import { ApplicationFailure } from '@temporalio/common';
import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import type { ProviderFailureDetails } from '../common/job-types.ts';

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

/** A base URL fit for messages and logs: no user, password, query or fragment. */
export function publicUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(an invalid URL)';
  }
}

/** System error codes of a connection that never got as far as sending the request. */
const NEVER_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'ERR_INVALID_URL',
]);

/** The system error codes anywhere in an error's cause chain (and in AggregateErrors). */
export function errorCodes(err: unknown, depth = 0): string[] {
  if (!err || typeof err !== 'object' || depth > 6) return [];
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof e.code === 'string' ? [e.code] : [];
  const nested = Array.isArray(e.errors) ? e.errors.flatMap((x) => errorCodes(x, depth + 1)) : [];
  return [...own, ...nested, ...errorCodes(e.cause, depth + 1)];
}

/**
 * True when the request surely never reached the provider, or the provider surely did nothing:
 * the connection was refused or the host not found, or the provider answered a 4xx (a 4xx creates
 * nothing; 408 excepted, it may come from a proxy after the server got the request). Timeouts,
 * resets after sending and 5xx answers leave the outcome unknown.
 */
export function surelyNotDone(err: unknown): boolean {
  if (err instanceof APIError && typeof err.status === 'number')
    return err.status >= 400 && err.status < 500 && err.status !== 408;
  if (err instanceof APIConnectionTimeoutError) return false;
  if (err instanceof APIConnectionError) {
    const codes = errorCodes(err.cause);
    return codes.length > 0 && codes.every((c) => NEVER_SENT_CODES.has(c));
  }
  return false;
}

/** The provider's own error code of an APIError (OpenAI's `code`, else its `type`). */
function providerCode(err: { code?: unknown; type?: unknown }): string | undefined {
  const code = err.code ?? err.type;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/** Why a connection failed, in words: the SDK's message plus the system code when there is one. */
function connectionReason(err: APIConnectionError): string {
  const codes = [...new Set(errorCodes(err.cause))];
  const base = err instanceof APIConnectionTimeoutError ? 'request timed out' : err.message;
  return codes.length ? `${base.replace(/\.$/, '')}: ${codes.join(', ')}` : base;
}

/** An error from a provider call in a few words: the status and message, or why the connection failed. */
export function describeError(err: unknown): string {
  if (err instanceof APIConnectionError) return connectionReason(err);
  if (err instanceof APIError && typeof err.status === 'number')
    return `answered ${err.status}: ${providerMessage(err)}`;
  return err instanceof Error ? err.message : String(err);
}

/** Turns any error from a provider call into an ApplicationFailure with explicit retry semantics. */
export function toFailure(err: unknown, what: string, baseUrl?: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const url = publicUrl(baseUrl);
  const at = url ? ` at ${url}` : '';
  if (err instanceof APIConnectionError) {
    const reason = connectionReason(err);
    const details: ProviderFailureDetails = {
      code: 'provider_unreachable',
      message: `cannot reach the provider${at} (${reason})`,
      call: what,
      ...(url ? { baseUrl: url } : {}),
    };
    return ApplicationFailure.create({
      message: `${what}: ${details.message}`,
      type: 'ProviderUnreachable',
      details: [details],
    });
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const text = providerMessage(err);
    const hint =
      status === 401 ? " (check BATCHPILOT_API_KEY and that the key belongs to this region's base URL)" : '';
    const details: ProviderFailureDetails = {
      code: providerCode(err) ?? `http_${status}`,
      message: text + hint,
      status_code: status,
      call: what,
      ...(url ? { baseUrl: url } : {}),
    };
    const message = `${what}: provider${at} answered ${status}: ${text}${hint}`;
    if (status === 429) {
      const delay = retryAfterMs(err.headers as Headers | undefined);
      return ApplicationFailure.create({
        message,
        type: 'ProviderRateLimited',
        details: [details],
        ...(delay !== undefined ? { nextRetryDelay: Math.max(delay, 100) } : {}),
      });
    }
    const retryable = status >= 500 || status === 408 || status === 409;
    return ApplicationFailure.create({
      message,
      type: `ProviderHttp${status}`,
      nonRetryable: !retryable,
      details: [details],
    });
  }
  const e = err as Error;
  return ApplicationFailure.retryable(`${what}: ${e?.message ?? String(err)}`, e?.name ?? 'Error');
}

/**
 * The provider's message without openai-node's "404 " prefix; a body that was not JSON (an HTML
 * error page) is cut to its first words so a log line stays a line.
 */
function providerMessage(err: { message: string }): string {
  const m = err.message
    .replace(/^\d{3}\s+/, '')
    .replace(/\s+/g, ' ')
    .trim();
  if (!m || m === 'status code (no body)') return 'no message';
  return m.length > 300 ? `${m.slice(0, 300)}…` : m;
}

/** Runs a provider call and translates its failure. */
export async function providerCall<T>(what: string, fn: () => Promise<T>, baseUrl?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFailure(err, what, baseUrl);
  }
}

/** The HTTP status of a provider error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof APIError && typeof err.status === 'number' ? err.status : undefined;
}
