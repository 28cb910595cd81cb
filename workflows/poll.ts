// Poll scheduling: a fixed interval when the user set one, else a random 60–120 s drawn from the
// workflow's deterministic random, so thousands of shards don't poll in lockstep.
import type { BatchStatus } from '../common/job-types.ts';
export const POLL_MIN_MS = 60_000;
export const POLL_MAX_MS = 120_000;

export function nextPollDelay(fixedMs: number | undefined, random: () => number): number {
  if (fixedMs !== undefined) return fixedMs;
  return POLL_MIN_MS + Math.floor(random() * (POLL_MAX_MS - POLL_MIN_MS + 1));
}

export const TERMINAL_STATUSES: ReadonlySet<BatchStatus> = new Set<BatchStatus>([
  'completed',
  'failed',
  'expired',
  'cancelled',
]);
