// What activities need from the outside world, injected by the worker (and by tests).
import type OpenAI from 'openai';
import type { Logger } from 'pino';
import type { Profile } from '../common/profiles.ts';
import type { Stores } from '../storage/workspace.ts';
import type { AnswerStore } from '../storage/answers.ts';

export interface ActivityDeps {
  /** Provider client, built with maxRetries 0: Temporal's retry policy is the only retry loop. */
  openai: OpenAI;
  /** Client for the synchronous Batch Chat API (long timeouts); `openai` when absent. */
  chatOpenai?: OpenAI;
  profile: Profile;
  /** Root under which every local input and output path must stay. */
  dataDir: string;
  /** BATCHPILOT_STORAGE: unset for the local data root, or `s3://bucket/prefix` (storage/location.ts). */
  storage?: string;
  /** BATCHPILOT_SCRATCH_DIR: where a worker on object storage keeps per-activity scratch folders. */
  scratchDir?: string;
  /** The process's stores; made from `scratchDir` on first use when absent (activities/stores.ts). */
  stores?: Stores;
  logger: Logger;
  /** Merge memory budget per shard in bytes (outcome records loaded at once). */
  mergeShardBudgetBytes?: number;
  /** BATCHPILOT_MAX_IN_FLIGHT: unfinished batches allowed per provider key (activities/in-flight-cap.ts). */
  maxInFlight?: number;
  /** BATCHPILOT_UNREACHABLE_AFTER in ms: failing provider calls become loud after this long. */
  unreachableAfterMs?: number;
  /**
   * Answers kept for reuse across jobs and the provider scope of their keys; absent: no job of
   * this worker reuses or stores answers.
   */
  answers?: { store: AnswerStore; scope: string };
  /** Uploads a second this process sends at most, evenly spaced (its call queue's rate); none when unset. */
  uploadsPerSecond?: number;
  /** List calls a second this process's batch sweeps make at most, evenly spaced; none when unset. */
  listsPerSecond?: number;
}
