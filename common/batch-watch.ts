// Polling by listing: the names and shapes shared by the watcher workflow, the shard workflows it
// wakes and the activities that list batches. Pure: workflow code imports it.
import type { BatchView } from './job-types.ts';

export const WATCHER_WORKFLOW = 'batchWatcher';
/** Signal a shard sends (through an activity's signalWithStart) to have its batch watched. */
export const WATCH_SIGNAL = 'watchBatch';
/** Signal the watcher sends a shard whose batch changed, or when the provider cannot list. */
export const WAKE_SIGNAL = 'batchWake';

/**
 * One watcher per task queue: the jobs of one provider account share a task queue (their pacing
 * does too), so one watcher lists the account's batches for all of them, one sweep at a time.
 */
export function watcherWorkflowId(taskQueue: string): string {
  return `${taskQueue}--watcher`;
}

/** A batch a shard asks the watcher to watch. */
export interface WatchRegistration {
  batchId: string;
  /** The batch's input file: DashScope lists batches by input_file_ids. */
  fileId: string;
  /** Epoch seconds no later than the batch's creation (its file's upload): bounds the listing. */
  createdAt: number;
  /** The shard workflow to wake. */
  workflowId: string;
  /** What the shard last saw (watchFingerprint): the watcher wakes it when the listing differs. */
  seen: string;
  /** The job's `--poll-interval` when fixed; the watcher sweeps at the shortest one it holds. */
  pollIntervalMs?: number;
}

/** What the watcher tells a shard: its batch's new state, or that listing cannot be used. */
export interface BatchWake {
  view?: BatchView;
  listUnavailable?: boolean;
}

/** How many quarters of the batch's lines the provider reports answered (0-4). */
export function answeredQuarter(b: BatchView): number {
  const { total, completed, failed } = b.requestCounts;
  return total > 0 ? Math.floor((4 * (completed + failed)) / total) : 0;
}

/**
 * What a shard cares about in a batch: its status and the quarter of its lines answered (the
 * granularity at which the shard reports progress to its job). A listing that differs wakes it.
 */
export function watchFingerprint(b: BatchView): string {
  return `${b.status}/q${answeredQuarter(b)}`;
}
