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
   * The watcher's sweep period the shard's fallback timer is set by (fallbackDelay): as the shard
   * learnt it when it registered, then as the watcher last told it.
   */
  sweepPeriodMs?: number;
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
  /** The watcher's recent sweep period: the shard sets its fallback timer by it from now on. */
  sweepPeriodMs?: number;
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
/**
 * Nor before this many of the watcher's sweep periods: a short fixed `--poll-interval` with
 * thousands of batches (a sweep of a minute or two at the list limit) would otherwise have the
 * fallback come between two sweeps, and every shard read its batch itself.
 */
export const FALLBACK_SWEEPS = 4;

export function fallbackDelay(pollIntervalMs: number | undefined, sweepPeriodMs = 0): number {
  const byPolls = pollIntervalMs === undefined ? FALLBACK_MS : pollIntervalMs * FALLBACK_POLLS;
  return Math.min(FALLBACK_MS, Math.max(byPolls, FALLBACK_SWEEPS * sweepPeriodMs));
}

/** The name under which the watcher keeps its sweep period in its memo, for registering shards. */
export const SWEEP_PERIOD_MEMO = 'sweepPeriodMs';

/**
 * Whether the watcher should tell a shard its batch is still watched, at workflow time `now`: when
 * the shard's fallback read would come before the watcher can be sure to sweep again. The margin is
 * an eighth of the fallback (22 minutes at the default: the wakes are then about as rare as the
 * reads they replace, so they cost no more Temporal actions while saving each read's provider
 * call), or three of the watcher's recent sweep periods if longer: with a short fixed
 * `--poll-interval` the fallback is short too, and a sweep of thousands of batches at the list
 * limit can take longer than an eighth of it.
 *
 * With `toldPeriods` (watchers that tell shards their sweep period), also when the shard's fallback
 * is less than half of what the current sweep period calls for: the wake then carries the period
 * and lengthens the shard's timer.
 */
export function stillWatchedDue(
  r: WatchRegistration,
  now: number,
  sweepPeriodMs = 0,
  toldPeriods = false,
): boolean {
  if (r.wokenAt === undefined) return false;
  const fallback = fallbackDelay(r.pollIntervalMs, toldPeriods ? r.sweepPeriodMs : 0);
  if (toldPeriods && fallback < fallbackDelay(r.pollIntervalMs, sweepPeriodMs) / 2) return true;
  // At most half: a period stretched by an idle wait must not make every sweep send wakes.
  const margin = Math.min(fallback / 2, Math.max(fallback / 8, 3 * sweepPeriodMs));
  return now - r.wokenAt >= fallback - margin;
}
