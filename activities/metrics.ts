// batchpilot's own Prometheus counters, exported through the Temporal runtime's metrics endpoint
// (BATCHPILOT_METRICS_ADDRESS) beside Temporal's: one table of names, incremented from activities.
import { Context } from '@temporalio/activity';

export const METRICS = {
  batchesCreated: ['batchpilot_batches_created', 'provider batches created'],
  linesSubmitted: ['batchpilot_lines_submitted', 'request lines sent in batches'],
  linesSucceeded: ['batchpilot_lines_succeeded', 'lines answered successfully'],
  linesFailed: ['batchpilot_lines_failed', 'lines that failed for good'],
  linesRetried: ['batchpilot_lines_retried', 'lines sent to another round'],
  tokens: ['batchpilot_tokens', 'total tokens reported by the provider'],
  polls: ['batchpilot_polls', 'batch status polls'],
  providerUnreachable: [
    'batchpilot_provider_unreachable',
    'provider calls still failing after BATCHPILOT_UNREACHABLE_AFTER',
  ],
  remoteDeleteFailures: ['batchpilot_remote_delete_failures', 'provider files that could not be deleted'],
} as const;

export function count(metric: keyof typeof METRICS, n = 1): void {
  if (n <= 0) return;
  try {
    const [name, description] = METRICS[metric];
    Context.current().metricMeter.createCounter(name, '1', description).add(n);
  } catch {
    // Outside an activity (unit tests of the helpers) there is no meter: nothing to count.
  }
}
