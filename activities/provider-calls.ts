// Provider calls as activities make them: errors translated once (provider-errors.ts), logged with
// the provider's message, and, when a provider has stayed unreachable past the worker's threshold,
// turned into a `ProviderUnreachableLong` failure the shard workflow catches to tell the job (then
// calls again). The threshold is measured from the activity's first scheduling, so the retries
// Temporal makes in between cost no history.
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { ProviderFailureDetails } from '../common/job-types.ts';
import type { ActivityDeps } from './deps.ts';
import { logFor } from './log.ts';
import { count } from './metrics.ts';
import { publicUrl, toFailure } from './provider-errors.ts';

/** Failure type of a provider that stayed unreachable past the threshold; the shard retries it. */
export const UNREACHABLE_LONG = 'ProviderUnreachableLong';

/** Default of BATCHPILOT_UNREACHABLE_AFTER: long enough for a blip, short enough to be told. */
export const DEFAULT_UNREACHABLE_AFTER_MS = 3 * 60_000;

export function isOutage(f: ApplicationFailure): boolean {
  return f.type === 'ProviderUnreachable' || /^ProviderHttp5\d\d$/.test(f.type ?? '');
}

/** Epoch ms at which this activity was first scheduled, when running inside one. */
function firstScheduledMs(): number | undefined {
  try {
    return Context.current().info.scheduledTimestampMs;
  } catch {
    return undefined;
  }
}

/** The failure to throw for `err`: translated, logged, and loud when the outage has lasted. */
export function failureOf(deps: ActivityDeps, err: unknown, what: string): ApplicationFailure {
  const f = toFailure(err, what, deps.openai.baseURL);
  const details = f.details?.[0] as ProviderFailureDetails | undefined;
  const log = logFor(deps);
  const fields = { call: what, type: f.type, code: details?.code, status: details?.status_code };
  if (f.nonRetryable) log.warn(fields, f.message);
  else log.info(fields, f.message);
  if (!isOutage(f)) return f;
  const since = firstScheduledMs();
  const after = deps.unreachableAfterMs ?? DEFAULT_UNREACHABLE_AFTER_MS;
  if (since === undefined || Date.now() - since < after) return f;
  return unreachableFailure(deps, f, since, what, deps.openai.baseURL);
}

/**
 * The `ProviderUnreachableLong` failure of an outage that began at `since` (epoch ms): counted,
 * logged, and carrying the call's own failure details so the shard can tell the job where and why.
 */
export function unreachableFailure(
  deps: ActivityDeps,
  f: ApplicationFailure,
  since: number,
  what: string,
  baseUrl: string,
): ApplicationFailure {
  const details = f.details?.[0] as ProviderFailureDetails | undefined;
  count('providerUnreachable');
  const url = publicUrl(baseUrl) ?? 'the provider';
  const minutes = Math.floor((Date.now() - since) / 60_000);
  logFor(deps).warn(
    { call: what, url, minutes },
    `provider unreachable at ${url} for ${minutes} min (retrying)`,
  );
  return ApplicationFailure.create({
    message: f.message,
    type: UNREACHABLE_LONG,
    nonRetryable: true,
    details: [
      { ...(details ?? { code: 'provider_unreachable', message: f.message }), unreachableSince: since },
    ],
  });
}

/** Runs provider calls for these deps: `call('create batch', () => …)`. */
export function providerCaller(deps: ActivityDeps) {
  return async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw failureOf(deps, err, what);
    }
  };
}
