// When a shard waits out the provider's enqueued-token limit, and for how long.
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { BatchView, BatchStatus } from '../../common/job-types.ts';
import { toFailure } from '../../activities/provider-errors.ts';
import {
  MAX_TOKEN_LIMIT_WAITS,
  createRefusedForTokens,
  refusedForTokens,
  tokenLimitDelay,
} from '../../workflows/token-limit.ts';

const batch = (status: BatchStatus, codes: string[]): BatchView => ({
  id: 'batch_1',
  status,
  outputFileId: null,
  errorFileId: null,
  requestCounts: { total: 0, completed: 0, failed: 0 },
  errors: codes.map((code) => ({ code, message: '', line: null })),
});

describe('token-limit refusals', () => {
  it('are failed batches whose only errors are token_limit_exceeded', () => {
    expect(refusedForTokens(batch('failed', ['token_limit_exceeded']))).toBe(true);
    expect(refusedForTokens(batch('failed', ['token_limit_exceeded', 'invalid_json_line']))).toBe(false);
    expect(refusedForTokens(batch('failed', []))).toBe(false);
    expect(refusedForTokens(batch('completed', ['token_limit_exceeded']))).toBe(false);
  });

  it('include a create the provider answered with that code, as the activity reports it', () => {
    const answer = new OpenAI.APIError(
      400,
      { code: 'token_limit_exceeded', message: 'Enqueued token limit reached' },
      undefined,
      new Headers(),
    );
    const fromCreate = new ActivityFailure(
      'activity failed',
      'createBatch',
      '1',
      RetryState.NON_RETRYABLE_FAILURE,
      undefined,
      toFailure(answer, 'create batch'),
    );
    expect(createRefusedForTokens(fromCreate)).toBe(true);
    const other = toFailure(
      new OpenAI.APIError(400, { code: 'invalid_request' }, undefined, new Headers()),
      'create batch',
    );
    expect(createRefusedForTokens(other)).toBe(false);
    expect(createRefusedForTokens(ApplicationFailure.nonRetryable('boom'))).toBe(false);
  });

  it('wait the poll interval, doubled at each refusal and capped at 30 minutes', () => {
    expect([1, 2, 3, 4, 5].map((n) => tokenLimitDelay(200, n))).toEqual([200, 400, 800, 1600, 3200]);
    expect(tokenLimitDelay(120_000, MAX_TOKEN_LIMIT_WAITS)).toBe(30 * 60_000);
  });
});
