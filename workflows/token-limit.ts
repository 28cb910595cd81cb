// A batch the provider refused for its enqueued-token limit (OpenAI's `token_limit_exceeded`) is not
// a failure of its lines: other batches of the model hold the room and free it as they finish. The
// unit waits on a durable timer and sends the same file again, without spending a retry round. Pure.
import type { BatchView } from '../activities/batches.ts';
import type { ProviderFailureDetails } from '../common/job-types.ts';

export const TOKEN_LIMIT_CODE = 'token_limit_exceeded';

/**
 * Refusals a unit waits out in a row before the refusal counts as lasting (the account's limit is
 * held elsewhere, or the unit alone is over it): the batch then fails as any failed batch does and a
 * person is told. With the default 60–120 s poll interval doubling each time, five waits span about
 * 45 minutes; the next round waits as long again.
 */
export const MAX_TOKEN_LIMIT_WAITS = 5;

/** Longest single wait, whatever the poll interval. */
const MAX_WAIT_MS = 30 * 60_000;

/** Whether a failed batch was refused for the enqueued-token limit and nothing else. */
export function refusedForTokens(b: BatchView): boolean {
  return b.status === 'failed' && b.errors.length > 0 && b.errors.every((e) => e.code === TOKEN_LIMIT_CODE);
}

/** Whether an activity failure is a create the provider answered with `token_limit_exceeded`. */
export function createRefusedForTokens(err: unknown): boolean {
  let e = err as { cause?: unknown; details?: unknown } | undefined;
  for (let i = 0; i < 10 && e; i++) {
    const d = Array.isArray(e.details) ? (e.details[0] as ProviderFailureDetails | undefined) : undefined;
    if (d && typeof d === 'object' && d.code === TOKEN_LIMIT_CODE) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** The wait before the `waits`-th resend (1-based): the poll delay, doubled each time, capped. */
export function tokenLimitDelay(pollDelayMs: number, waits: number): number {
  return Math.min(pollDelayMs * 2 ** (waits - 1), Math.max(MAX_WAIT_MS, pollDelayMs));
}
