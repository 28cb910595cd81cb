// Request rate limits as a provider enforces them, opt-in (`"rateLimits"` in the fault settings):
// a token bucket per route holding one second's worth of requests (at least one), refilled
// continuously; a request with no token left is answered 429 with the provider's throttling body
// and a Retry-After saying when a token will be there. Used to measure how an orchestrator paces
// itself, not to be exact about a provider's burst allowance, which none documents.
import type { EmulatedProfile } from './limits.ts';
import type { RouteName } from './routes.ts';

/** Requests per minute by route. */
export type RouteRates = Partial<Record<RouteName, number>>;

/**
 * What the providers publish. DashScope: create, retrieve and cancel 1,000 a minute each, list 100,
 * upload about 3 a second, other file calls 10 a second. OpenAI publishes no per-route figures for
 * the Batch API: the same table stands in for it.
 */
export const PUBLISHED_RATES: Record<EmulatedProfile, RouteRates> = {
  dashscope: { create: 1000, retrieve: 1000, cancel: 1000, list: 100, upload: 180, files: 600, content: 600 },
  openai: { create: 1000, retrieve: 1000, cancel: 1000, list: 100, upload: 180, files: 600, content: 600 },
};

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #buckets = new Map<RouteName, Bucket>();

  /** Takes a token for `route`; returns 0 when allowed, else the milliseconds until one is there. */
  take(route: RouteName, perMinute: number | undefined, now = Date.now()): number {
    if (perMinute === undefined || perMinute <= 0) return 0;
    const perMs = perMinute / 60_000;
    const capacity = Math.max(1, perMinute / 60);
    const b = this.#buckets.get(route) ?? { tokens: capacity, at: now };
    b.tokens = Math.min(capacity, b.tokens + (now - b.at) * perMs);
    b.at = now;
    this.#buckets.set(route, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / perMs);
  }
}
