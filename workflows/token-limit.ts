// A batch the provider refused for its enqueued-token limit (OpenAI's `token_limit_exceeded`) is not
// a failure of its lines: other batches of the model hold the room and free it as they finish. The
// unit waits on a durable timer and sends the same file again, without spending a retry round. The
// job also admits units so that each model's enqueued estimate stays under the job's limit. Pure.
import type { BatchView } from '../common/job-types.ts';
import type { ProviderFailureDetails, UnitProgress } from '../common/job-types.ts';

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

/**
 * Estimated input tokens per model in the units running now, against the job's limit: a unit is
 * admitted when its model's total stays within the limit, or when that model has nothing running
 * (so a unit larger than the limit still goes, alone). Units without an estimate always go.
 */
export class EnqueuedTokens {
  private readonly byModel = new Map<string, number>();
  private readonly limit: number | undefined;
  constructor(limit: number | undefined) {
    this.limit = limit;
  }

  admits(u: UnitProgress): boolean {
    if (this.limit === undefined || !u.model || u.tokens === undefined) return true;
    const held = this.byModel.get(u.model) ?? 0;
    return held === 0 || held + u.tokens <= this.limit;
  }

  add(u: UnitProgress): void {
    if (u.model && u.tokens !== undefined)
      this.byModel.set(u.model, (this.byModel.get(u.model) ?? 0) + u.tokens);
  }

  remove(u: UnitProgress): void {
    if (u.model && u.tokens !== undefined)
      this.byModel.set(u.model, (this.byModel.get(u.model) ?? 0) - u.tokens);
  }
}
