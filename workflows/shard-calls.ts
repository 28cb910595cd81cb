// The shard workflow's activity stubs: their timeouts and retry policies, and the task queue each
// provider call is paced on.
import { patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { CALL_QUEUES, callQueueName, type PacedActivity } from '../common/rate-limits.ts';

// Provider calls retry forever with capped backoff (a provider away for an hour is weather, not a
// failure); non-retryable failures (4xx) stop at once (activities/provider-errors.ts).
export const providerOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m' },
} as const;
export const uploadOptions = {
  startToCloseTimeout: '1h',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m' },
} as const;
export const collectOptions = { ...uploadOptions, startToCloseTimeout: '4h' } as const;
// Batch Chat answers can take up to an hour each; the activity heartbeats every few seconds.
export const chatOptions = { ...uploadOptions, startToCloseTimeout: '24h' } as const;

export const provider = proxyActivities<Activities>(providerOptions);
export const upload = proxyActivities<Activities>(uploadOptions);
export const local = proxyActivities<Activities>(collectOptions);

const CALL_CLASS_QUEUES = 'call-class-queues';

/**
 * The task queue of an activity's provider calls: `<queue>-calls-<class>`, whose workers set a
 * fleet-wide rate from the provider's published limit for that class (common/rate-limits.ts).
 * Runs recorded before these queues existed keep the workflow's own queue.
 */
export function paced(activity: PacedActivity): { taskQueue?: string } {
  if (!patched(CALL_CLASS_QUEUES)) return {};
  return { taskQueue: callQueueName(workflowInfo().taskQueue, CALL_QUEUES[activity].queue) };
}
/** Deletes provider files (never fails but for throttling, which it retries). */
export function deleteFiles(ids: string[]): Promise<number> {
  return provider.deleteRemoteFiles.executeWithOptions(
    { ...providerOptions, ...paced('deleteRemoteFiles') },
    [ids],
  );
}
