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
  /**
   * Workflow time (ms) the watcher last registered or woke the shard: its fallback timer runs
   * from then. Set by the watcher, not the shard.
   */
  wokenAt?: number;
}

/** What the watcher tells a shard: its batch's new state, or that listing cannot be used. */
export interface BatchWake {
  view?: BatchView;
  listUnavailable?: boolean;
  /**
   * The id of a batch the watcher's last sweep listed unchanged: it is still watched, so its
   * shard restarts its fallback timer instead of reading the batch from the provider.
   */
  stillWatched?: string;
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

/**
 * A shard's fallback read: with the watcher lost, it reads its batch itself this long after the
 * watcher last woke it. At the default poll interval, every 3 h.
 */
export const FALLBACK_MS = 3 * 3_600_000;
/** With a fixed `--poll-interval`, the fallback read comes after this many intervals (at most FALLBACK_MS). */
export const FALLBACK_POLLS = 120;

export function fallbackDelay(pollIntervalMs: number | undefined): number {
  return pollIntervalMs === undefined ? FALLBACK_MS : Math.min(FALLBACK_MS, pollIntervalMs * FALLBACK_POLLS);
}

/**
 * Whether the watcher should tell a shard its batch is still watched, at workflow time `now`: when
 * the shard's fallback read would come before the watcher can be sure to sweep again. The margin is
 * an eighth of the fallback (22 minutes at the default: the wakes are then about as rare as the
 * reads they replace, so they cost no more Temporal actions while saving each read's provider
 * call), or three of the watcher's recent sweep periods if longer: with a short fixed
 * `--poll-interval` the fallback is short too, and a sweep of thousands of batches at the list
 * limit can take longer than an eighth of it.
 */
export function stillWatchedDue(r: WatchRegistration, now: number, sweepPeriodMs = 0): boolean {
  const fallback = fallbackDelay(r.pollIntervalMs);
  // At most half: a period stretched by an idle wait must not make every sweep send wakes.
  const margin = Math.min(fallback / 2, Math.max(fallback / 8, 3 * sweepPeriodMs));
  return r.wokenAt !== undefined && now - r.wokenAt >= fallback - margin;
}
