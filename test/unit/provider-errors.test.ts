// Provider errors become Temporal failures in one place, with explicit retry semantics.
import { APIConnectionError, APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { toFailure } from '../../activities/provider-errors.ts';

function apiError(status: number, headers: Record<string, string> = {}): APIError {
  return APIError.generate(
    status,
    { error: { message: `status ${status}` } },
    `status ${status}`,
    new Headers(headers),
  );
}

describe('toFailure', () => {
  it('never retries a 4xx other than 408, 409 and 429', () => {
    for (const status of [400, 403, 404, 422])
      expect(toFailure(apiError(status), 'x').nonRetryable, String(status)).toBe(true);
    for (const status of [408, 409])
      expect(toFailure(apiError(status), 'x').nonRetryable, String(status)).toBe(false);
  });
  it('waits as long as Retry-After says on a 429', () => {
    const f = toFailure(apiError(429, { 'retry-after': '7' }), 'create batch');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay).toBe(7000);
    expect(toFailure(apiError(429), 'x').nextRetryDelay).toBeUndefined();
  });
  it('retries 5xx and dropped connections', () => {
    expect(toFailure(apiError(503), 'x').nonRetryable).toBe(false);
    expect(toFailure(new APIConnectionError({ message: 'socket hang up' }), 'upload').nonRetryable).toBe(
      false,
    );
  });
  it('tells the user a 401 may be a key of another region', () => {
    const f = toFailure(apiError(401), 'create batch');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/BATCHPILOT_API_KEY/);
    expect(f.message).toMatch(/region/);
  });
});
