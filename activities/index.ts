// All activities of the job, built from injected dependencies (no module-level singletons).
import { batchActivities } from './batches.ts';
import { chatActivities } from './chat.ts';
import { collectActivities } from './collect.ts';
import type { ActivityDeps } from './deps.ts';
import { mergeActivities } from './merge.ts';
import { planActivities } from './plan.ts';
import { retryRoundActivities } from './retry-round.ts';
import { storesOf } from './stores.ts';

export function createActivities(deps: ActivityDeps) {
  return {
    ...planActivities(deps),
    ...batchActivities(deps),
    ...collectActivities(deps),
    ...chatActivities(deps),
    ...retryRoundActivities(storesOf(deps)),
    ...mergeActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps };
