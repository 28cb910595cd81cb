// The job's own activities: local file work (plan, retry packing, merge, summary).
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';

// Local file work (plan, retry packing, merge) heartbeats; a disk that stays broken fails the job
// after 20 attempts with the activity's message rather than retrying all night.
export const planOptions = {
  startToCloseTimeout: '6h',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 20 },
} as const;
export const longLocal = proxyActivities<Activities>(planOptions);

/**
 * Asking Temporal which shard workflows have ended: short; a failed check is logged and made again
 * at the next interval, so a few attempts are enough.
 */
export const temporalCalls = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
});
