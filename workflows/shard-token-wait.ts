// A unit's wait when the provider refuses its batch for the enqueued-token limit (the rules are in
// workflows/token-limit.ts): a durable timer, then the same file is sent again.
import { patched, sleep } from '@temporalio/workflow';
import type { UnitStatus } from '../common/job-types.ts';
import { nextPollDelay } from './poll.ts';
import type { UnitInput, UnitState } from './shard.ts';
import { MAX_TOKEN_LIMIT_WAITS, tokenLimitDelay } from './token-limit.ts';

const TOKEN_LIMIT_WAIT = 'token-limit-wait';

/**
 * Whether a refusal for the enqueued-token limit is waited out: not past MAX_TOKEN_LIMIT_WAITS in a
 * row, and not in a run recorded before units waited (those failed the batch, and replay must too).
 */
export function canWaitForTokens(state: UnitState): boolean {
  return (state.tokenLimitWaits ?? 0) < MAX_TOKEN_LIMIT_WAITS && patched(TOKEN_LIMIT_WAIT);
}

/** Notes the refused batch (if one was made), tells the job, and sleeps before sending again. */
export async function waitForTokens(
  input: UnitInput,
  state: UnitState,
  refusedBatchId: string | undefined,
  report: (s: UnitStatus) => Promise<void>,
): Promise<void> {
  if (refusedBatchId) state.refusedBatchIds = [...(state.refusedBatchIds ?? []), refusedBatchId];
  state.tokenLimitWaits = (state.tokenLimitWaits ?? 0) + 1;
  delete state.batch;
  await report('waiting');
  const delay = tokenLimitDelay(nextPollDelay(input.pollIntervalMs, Math.random), state.tokenLimitWaits);
  await sleep(delay, {
    summary: `enqueued-token limit: send again in ${Math.round(delay / 1000)}s (wait ${state.tokenLimitWaits} of at most ${MAX_TOKEN_LIMIT_WAITS})`,
  });
}
