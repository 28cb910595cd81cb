// Provider errors are read in one place (provider-errors.ts): the same status means the same thing
// for a call batchpilot makes (Temporal failure), a Batch Chat line it retries and a result line it
// collects, and every reason carries the provider's own words.
import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { classifyResult } from '../../activities/classify.ts';
import { errorKind, readProviderError, toFailure } from '../../activities/provider-errors.ts';

function apiError(
  status: number,
  headers: Record<string, string> = {},
  error: object | null = { message: `status ${status}` },
): APIError {
  return APIError.generate(status, error ? { error } : undefined, undefined, new Headers(headers));
}

/** A result line that failed with `status`, as a batch's output file or Batch Chat writes it. */
const resultLine = (status: number, code?: string) => ({
  custom_id: 'a',
  response: { status_code: status, body: { error: { ...(code ? { code } : {}), message: 'm' } } },
  error: null,
});

describe('the error map', () => {
  it.each([
    // [status, code, kind]: the HTTP status decides when it is an error status…
    [400, 'InvalidParameter', 'permanent'],
    [401, 'InvalidApiKey', 'permanent'],
    [403, 'AccessDenied', 'permanent'],
    [404, 'model_not_found', 'permanent'],
    [408, undefined, 'retry'],
    [409, 'conflict', 'retry'],
    [413, undefined, 'permanent'],
    [422, undefined, 'permanent'],
    [429, 'Throttling.RateQuota', 'retry'],
    [500, 'server_error', 'retry'],
    [502, undefined, 'retry'],
    [503, undefined, 'retry'],
    [504, undefined, 'retry'],
    // …and the code decides without one (result lines that never got an HTTP answer).
    [null, 'batch_expired', 'retry'],
    [null, 'request_timeout', 'retry'],
    [null, 'batch_cancelled', 'retry'],
    [null, 'rate_limit_exceeded', 'retry'],
    [null, 'server_error', 'retry'],
    [null, 'provider_unreachable', 'retry'],
    [null, 'mismatched_test_url', 'permanent'],
    [null, 'unknown_error', 'permanent'],
    [null, undefined, 'permanent'],
  ] as const)('status %s, code %s: %s', (status, code, kind) => {
    expect(errorKind(status, code)).toBe(kind);
  });

  it('gives a call, a Batch Chat line and a collected result line the same answer for each status', () => {
    for (let status = 400; status < 600; status++) {
      const call = readProviderError(apiError(status));
      const failure = toFailure(apiError(status), 'x');
      const line = classifyResult(resultLine(status));
      expect(call.kind, `read ${status}`).toBe(errorKind(status, undefined));
      expect(failure.nonRetryable, `failure ${status}`).toBe(call.kind === 'permanent');
      expect(line.kind, `result line ${status}`).toBe(call.kind);
    }
  });

  it('retries a 409 everywhere, a result line included (Batch Chat writes its last 409 into one)', () => {
    expect(toFailure(apiError(409), 'x').nonRetryable).toBe(false);
    expect(readProviderError(apiError(409)).kind).toBe('retry');
    expect(classifyResult(resultLine(409, 'conflict')).kind).toBe('retry');
  });

  it("reads the provider's own code and message, and cuts an HTML page to a line", () => {
    const e = readProviderError(
      apiError(
        400,
        { 'x-request-id': 'req-1' },
        { code: 'InvalidParameter', message: 'Range of input length' },
      ),
    );
    expect(e).toEqual({
      kind: 'permanent',
      status: 400,
      code: 'InvalidParameter',
      message: 'Range of input length',
      requestId: 'req-1',
      body: { code: 'InvalidParameter', message: 'Range of input length' },
    });
    const html = APIError.generate(502, undefined, `<html>${'x '.repeat(400)}</html>`, new Headers());
    const r = readProviderError(html);
    expect(r).toMatchObject({ kind: 'retry', status: 502, code: 'http_502' });
    expect(r.message.length).toBeLessThanOrEqual(301);
    expect(r.message).not.toContain('\n');
    expect(readProviderError(apiError(404, {}, null)).message).toBe('no message');
  });

  it('reads a call that got no answer as retryable, saying why', () => {
    const refused = new APIConnectionError({
      message: 'Connection error.',
      cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    });
    expect(readProviderError(refused)).toEqual({
      kind: 'retry',
      status: null,
      code: 'provider_unreachable',
      message: 'Connection error: ECONNREFUSED',
    });
    expect(readProviderError(new APIConnectionTimeoutError())).toMatchObject({
      kind: 'retry',
      code: 'request_timeout',
      message: 'request timed out',
    });
    expect(readProviderError(new TypeError('boom'))).toMatchObject({ kind: 'retry', code: 'request_failed' });
  });

  it('keeps the wait a retryable answer asks for, and none for a permanent one', () => {
    expect(readProviderError(apiError(503, { 'retry-after': '2' })).retryAfterMs).toBe(2000);
    expect(readProviderError(apiError(429, { 'retry-after-ms': '250' })).retryAfterMs).toBe(250);
    expect(readProviderError(apiError(400, { 'retry-after': '2' })).retryAfterMs).toBeUndefined();
  });
});

describe('toFailure', () => {
  it('never retries a 4xx other than 408, 409 and 429', () => {
    for (const status of [400, 403, 404, 422])
      expect(toFailure(apiError(status), 'x').nonRetryable, String(status)).toBe(true);
    for (const status of [408, 409])
      expect(toFailure(apiError(status), 'x').nonRetryable, String(status)).toBe(false);
  });
  it('waits as long as Retry-After says on a 429, and on a 503', () => {
    const f = toFailure(apiError(429, { 'retry-after': '7' }), 'create batch');
    expect(f.nonRetryable).toBe(false);
    expect(f.type).toBe('ProviderRateLimited');
    expect(f.nextRetryDelay).toBe(7000);
    expect(toFailure(apiError(429), 'x').nextRetryDelay).toBeUndefined();
    expect(toFailure(apiError(503, { 'retry-after': '3' }), 'x').nextRetryDelay).toBe(3000);
    // A provider's "retry at once" must not become a busy loop.
    expect(toFailure(apiError(429, { 'retry-after': '0' }), 'x').nextRetryDelay).toBe(100);
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
  it("carries the provider's status, code and message as details", () => {
    const f = toFailure(
      apiError(400, {}, { code: 'InvalidParameter', message: 'bad model' }),
      'create batch',
    );
    expect(f.message).toBe('create batch: provider answered 400: bad model');
    expect(f.details?.[0]).toEqual({
      code: 'InvalidParameter',
      message: 'bad model',
      status_code: 400,
      call: 'create batch',
    });
  });
});
