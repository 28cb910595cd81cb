// Opt-in rate limits: the emulator answers like a provider enforcing its published limits, so an
// orchestrator's pacing can be measured against it.
import { APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { parseFaultSettings } from '../../emulator/index.ts';
import { RateLimiter } from '../../emulator/rate-limits.ts';
import { FAST, harness, type Harness } from './helpers.ts';

describe('RateLimiter', () => {
  it("holds one second's worth of requests and refills continuously", () => {
    const r = new RateLimiter();
    // 120 a minute: 2 a second, so a burst of 2, then one every 500 ms.
    expect(r.take('retrieve', 120, 0)).toBe(0);
    expect(r.take('retrieve', 120, 0)).toBe(0);
    expect(r.take('retrieve', 120, 0)).toBe(500);
    expect(r.take('retrieve', 120, 250)).toBe(250);
    expect(r.take('retrieve', 120, 500)).toBe(0);
    // Routes are counted apart; an unlimited route is never held.
    expect(r.take('create', 120, 500)).toBe(0);
    expect(r.take('upload', undefined, 500)).toBe(0);
  });
  it('keeps a burst of at least one for limits under one a second', () => {
    const r = new RateLimiter();
    expect(r.take('list', 30, 0)).toBe(0);
    expect(r.take('list', 30, 0)).toBe(2000);
  });
});

describe('emulator rate limits', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  async function statusOf(call: () => Promise<unknown>): Promise<{ status: number; error?: APIError }> {
    try {
      await call();
      return { status: 200 };
    } catch (err) {
      if (err instanceof APIError) return { status: err.status ?? 0, error: err };
      throw err;
    }
  }

  it('answers 429 with the throttling code and Retry-After once a route is over its limit', async () => {
    h = await harness({ faults: { ...FAST, rateLimits: { list: 60 } } });
    const client = h.client;
    expect((await statusOf(() => client.batches.list())).status).toBe(200);
    const second = await statusOf(() => client.batches.list());
    expect(second.status).toBe(429);
    expect(second.error?.headers?.get('retry-after')).toBe('1');
    expect(second.error?.error).toMatchObject({ code: 'Throttling.RateQuota' });
    // Another route is not held by the list's bucket.
    expect((await statusOf(() => client.files.list())).status).toBe(200);
    const stats = (await (await fetch(h.emu.url.replace(/\/v1$/, '/_emulator/stats'))).json()) as {
      throttled: Record<string, number>;
    };
    expect(stats.throttled).toEqual({ list: 1 });
  });

  it("'published' enforces the profile's published limits (list: 100 a minute)", async () => {
    h = await harness({ faults: { ...FAST, rateLimits: 'published' } });
    const client = h.client;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await statusOf(() => client.batches.list())).status);
    expect(statuses).toEqual([200, 429, 429]);
  });

  it('refuses a rate limit on an unknown route or below zero', () => {
    expect(() => parseFaultSettings({ rateLimits: { nosuch: 5 } })).toThrow(/rateLimits/);
    expect(() => parseFaultSettings({ rateLimits: { list: -1 } })).toThrow(/rateLimits\.list/);
    expect(parseFaultSettings({ rateLimits: 'published' })).toEqual({ rateLimits: 'published' });
  });
});
