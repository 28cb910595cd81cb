// The one map from what a provider answered (HTTP status, error code, error body) to what to do
// about it: send the request again (408, 409, 429, 5xx, no answer at all) or not (any other 4xx:
// the user must fix the request, the key or the account), with a reason in the provider's own
// words and the wait its Retry-After asks for. Every caller reads errors through it: activities
// turn it into Temporal failures here (`toFailure`), Batch Chat retries a line by it, and result
// lines are classified by it (classify.ts), so a status cannot mean one thing in one place and
// another elsewhere. Every failure carries what the user needs to act on it (the call, the
// provider's status, code and message, the base URL without credentials) as its details.
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

/** What a provider's error means for the request that got it. */
export type ErrorKind = 'retry' | 'permanent';

/**
 * Error codes, read where no HTTP status says more, that a later attempt can fix: the result-line
 * codes of docs/providers.md (Retry classes), and the codes `readProviderError` gives a call that
 * got no answer at all.
 */
const RETRYABLE_CODES = new Set([
  'batch_expired',
  'request_timeout',
  'batch_cancelled',
  'rate_limit_exceeded',
  'server_error',
  'provider_unreachable',
  'request_failed',
]);

/**
 * Whether sending the request again can succeed. An HTTP error status decides when there is one:
 * 408 (a timeout, possibly a proxy's), 409 (a conflict with a state that is still changing; the
 * openai SDK retries it too), 429 and 5xx retry, any other 4xx never succeeds as it is. Without an
 * error status, the provider's code decides.
 */
export function errorKind(status: number | null | undefined, code: string | undefined): ErrorKind {
  if (typeof status === 'number' && status >= 400)
    return status === 408 || status === 409 || status === 429 || status >= 500 ? 'retry' : 'permanent';
  return code !== undefined && RETRYABLE_CODES.has(code) ? 'retry' : 'permanent';
}

/** A provider call's error, read once: what every caller needs to decide, report and wait. */
export interface ProviderError {
  kind: ErrorKind;
  /** The HTTP status, or null when no answer came. */
  status: number | null;
  /**
   * The provider's own code (OpenAI's `code`, else its `type`), `http_<status>` when it gave none;
   * without an answer `request_timeout`, `provider_unreachable`, or `request_failed` (an error of
   * the client's own, not the provider's).
   */
  code: string;
  /** The provider's own message on one bounded line, or why no answer came; a hint where one helps. */
  message: string;
  /** How long the provider asked to wait before the next attempt (Retry-After), when it said. */
  retryAfterMs?: number;
  requestId?: string;
  /** The `error` object of the provider's answer as it came, to keep in a result line. */
  body?: object;
}

/** Reads any error thrown by a provider call (openai-node's or another) into a ProviderError. */
export function readProviderError(err: unknown, now = Date.now()): ProviderError {
  if (err instanceof APIConnectionError) {
    const code = err instanceof APIConnectionTimeoutError ? 'request_timeout' : 'provider_unreachable';
    return { kind: errorKind(null, code), status: null, code, message: connectionReason(err) };
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const code = providerCode(err) ?? `http_${status}`;
    const kind = errorKind(status, code);
    const wait = kind === 'retry' ? retryAfterMs(err.headers as Headers | undefined, now) : undefined;
    const body: unknown = err.error;
    return {
      kind,
      status,
      code,
      message: providerMessage(err) + hintFor(status),
      ...(wait !== undefined ? { retryAfterMs: wait } : {}),
      ...(err.requestID ? { requestId: err.requestID } : {}),
      ...(body && typeof body === 'object' ? { body } : {}),
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { kind: errorKind(null, 'request_failed'), status: null, code: 'request_failed', message };
}

/** Waits shorter than this are raised to it: a provider's "0" must not become a busy loop. */
const MIN_RETRY_DELAY_MS = 100;

/** The wait the provider asked for before sending again, if it asked (raised to a floor). */
export function providerRetryDelay(e: ProviderError): number | undefined {
  return e.retryAfterMs === undefined ? undefined : Math.max(e.retryAfterMs, MIN_RETRY_DELAY_MS);
}

/** What the user can do about a status that is usually theirs to fix. */
function hintFor(status: number): string {
  return status === 401
    ? " (check BATCHPILOT_API_KEY and that the key belongs to this region's base URL)"
    : '';
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
  const e = readProviderError(err);
  return e.status === null ? e.message : `answered ${e.status}: ${e.message}`;
}

/** Turns any error from a provider call into an ApplicationFailure with explicit retry semantics. */
export function toFailure(err: unknown, what: string, baseUrl?: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const url = publicUrl(baseUrl);
  const at = url ? ` at ${url}` : '';
  const e = readProviderError(err);
  if (err instanceof APIConnectionError) {
    const details: ProviderFailureDetails = {
      code: 'provider_unreachable',
      message: `cannot reach the provider${at} (${e.message})`,
      call: what,
      ...(url ? { baseUrl: url } : {}),
    };
    return ApplicationFailure.create({
      message: `${what}: ${details.message}`,
      type: 'ProviderUnreachable',
      details: [details],
    });
  }
  if (e.status !== null) {
    const details: ProviderFailureDetails = {
      code: e.code,
      message: e.message,
      status_code: e.status,
      call: what,
      ...(url ? { baseUrl: url } : {}),
    };
    const delay = providerRetryDelay(e);
    return ApplicationFailure.create({
      message: `${what}: provider${at} answered ${e.status}: ${e.message}`,
      type: e.status === 429 ? 'ProviderRateLimited' : `ProviderHttp${e.status}`,
      nonRetryable: e.kind === 'permanent',
      details: [details],
      ...(delay !== undefined ? { nextRetryDelay: delay } : {}),
    });
  }
  const name = err instanceof Error ? err.name : 'Error';
  return ApplicationFailure.retryable(`${what}: ${e.message}`, name);
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
