// BATCHPILOT_MAX_IN_FLIGHT: a cap on provider batches in flight per provider key (account), across
// every job and every worker. The provider itself is the source of truth (its list of unfinished
// batches), so the cap survives restarts and needs no coordinator. A create that would pass the
// cap waits (a retryable failure with a delay, no history events) until a batch ends.
//
// Limits: within one worker the check and the create are serialized, so the cap holds exactly;
// workers on several machines racing at the same instant can overshoot by at most one batch each.
import { ApplicationFailure } from '@temporalio/common';
import type OpenAI from 'openai';
import type { Profile } from '../common/profiles.ts';

export const IN_FLIGHT_STATUSES = ['validating', 'in_progress', 'finalizing', 'cancelling'] as const;
const RECHECK_MS = 5000;
/** Batches older than the longest completion window (336 h) can no longer be in flight. */
const OLDEST_IN_FLIGHT_S = 15 * 24 * 3600;

/** Counts the account's unfinished batches, up to `stopAt`. */
export async function countInFlight(openai: OpenAI, profile: Profile, stopAt: number): Promise<number> {
  let n = 0;
  const inFlight = new Set<string>(IN_FLIGHT_STATUSES);
  if (profile.listFilters) {
    const query = { status: IN_FLIGHT_STATUSES.join(','), limit: 100 } as OpenAI.Batches.BatchListParams;
    for await (const b of openai.batches.list(query)) {
      if (inFlight.has(b.status) && ++n >= stopAt) break;
    }
    return n;
  }
  const oldest = Date.now() / 1000 - OLDEST_IN_FLIGHT_S;
  for await (const b of openai.batches.list({ limit: 100 })) {
    if (b.created_at < oldest) break;
    if (inFlight.has(b.status) && ++n >= stopAt) break;
  }
  return n;
}

/** Throws a retryable "wait" failure when the account already has `cap` batches in flight. */
export async function ensureRoom(openai: OpenAI, profile: Profile, cap: number): Promise<void> {
  const n = await countInFlight(openai, profile, cap);
  if (n >= cap) {
    throw ApplicationFailure.create({
      message: `${n} batches in flight, the cap (BATCHPILOT_MAX_IN_FLIGHT) is ${cap}: waiting for one to end`,
      type: 'InFlightCapReached',
      nextRetryDelay: RECHECK_MS,
    });
  }
}
