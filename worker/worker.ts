// Builds a batchpilot worker: the provider client, the activities and the workflow bundle, on the
// fleet's task queue and on one task queue per provider call class (common/rate-limits.ts), where
// Temporal's server paces the whole fleet's calls of that class.
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities } from '../activities/index.ts';
import { providerScope } from '../common/request-key.ts';
import type { AnswerStore } from '../storage/answers.ts';
import { LocalAnswerStore } from '../storage/local-answers.ts';
import { bucketAnswerStore } from '../storage/s3-answers.ts';
import { isS3Uri } from '../storage/s3.ts';
import { defaultScratchDir } from '../storage/workspace.ts';
import { createBatchChatClient, createProviderClient } from './provider-client.ts';
import { dataConverterFor } from '../common/codec.ts';
import type { Profile } from '../common/profiles.ts';
import { PACED_CLASSES, callQueueName, queueRate, type CallClass } from '../common/rate-limits.ts';
import { startTracing, type TracingSettings } from '../common/tracing.ts';
import { workerTracing } from './tracing.ts';
import { workflowBundleFor, type BundleSource } from './workflow-bundle.ts';

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  dataDir: string;
  /** BATCHPILOT_STORAGE: unset (the data root) or `s3://bucket/prefix`. */
  storage?: string;
  /** BATCHPILOT_SCRATCH_DIR: per-activity scratch on object storage. */
  scratchDir?: string;
  profile: Profile;
  baseUrl: string;
  apiKey: string | undefined;
  logger: Logger;
  /**
   * A prebuilt bundle (tests and `run` reuse one; BATCHPILOT_WORKFLOW_BUNDLE); built from workflows/
   * when absent, with the tracing interceptors only when the worker traces (workflow-bundle.ts).
   */
  workflowBundle?: BundleSource;
  maxConcurrentActivities?: number;
  mergeShardBudgetBytes?: number;
  /** BATCHPILOT_MAX_IN_FLIGHT. */
  maxInFlight?: number;
  /** BATCHPILOT_ANSWERS_DIR/_MAX_BYTES/_FILTER_BYTES: the answer store jobs reuse from; none when absent. */
  answers?: { dir: string; maxBytes: number; filterBytes?: number };
  /** BATCHPILOT_UNREACHABLE_AFTER in ms. */
  unreachableAfterMs?: number;
  /** BATCHPILOT_CODEC_KEY: encrypt every payload (common/codec.ts). */
  codecKey?: string;
  /**
   * BATCHPILOT_BUILD_ID: the deployment version this worker reports (deployment name = task queue).
   * Reported only, not used to route: upgrades rely on replay-safe workflow changes (`patched()`),
   * so any worker may continue any job.
   */
  buildId?: string | undefined;
  /** OTEL_*: traces exported over OTLP/HTTP (common/tracing.ts); off when undefined. */
  tracing?: TracingSettings | undefined;
}

export interface CallWorker {
  cls: CallClass;
  worker: Worker;
  rate: number | undefined;
}

/**
 * The Temporal workers of one `batchpilot worker` process, run and stopped together: the main one
 * (workflows and local activities) and one per call-class queue (provider calls, paced).
 */
export class WorkerGroup {
  readonly main: Worker;
  /** The call-class workers and the fleet-wide rate each sets (activities a second; undefined: none). */
  readonly callWorkers: CallWorker[];

  constructor(main: Worker, callWorkers: CallWorker[]) {
    this.main = main;
    this.callWorkers = callWorkers;
  }

  get options(): Worker['options'] {
    return this.main.options;
  }

  #all(): Worker[] {
    return [this.main, ...this.callWorkers.map((c) => c.worker)];
  }

  /** Runs every worker until shutdown; one failing stops the others, then its error is thrown. */
  async run(): Promise<void> {
    const runs = this.#all().map((w) => w.run());
    try {
      await Promise.all(runs);
    } catch (err) {
      this.shutdown();
      await Promise.allSettled(runs);
      throw err;
    }
  }

  /** Starts a graceful shutdown of every worker still running. */
  shutdown(): void {
    for (const w of this.#all()) if (w.getState() === 'RUNNING') w.shutdown();
  }
}

/**
 * Where this worker's answers live: with object storage (BATCHPILOT_STORAGE=s3://…), in its bucket
 * (storage/s3-answers.ts, bucketAnswerStore), so that every worker of a fleet reuses every other's;
 * otherwise in the answers folder on this disk.
 */
function answerStoreFor(opts: WorkerOptions, answers: NonNullable<WorkerOptions['answers']>): AnswerStore {
  const bounds = {
    maxBytes: answers.maxBytes,
    ...(answers.filterBytes !== undefined ? { filterBytes: answers.filterBytes } : {}),
  };
  if (opts.storage && isS3Uri(opts.storage)) {
    return bucketAnswerStore(opts.storage, opts.scratchDir ?? defaultScratchDir(), bounds);
  }
  return new LocalAnswerStore({ root: answers.dir, ...bounds });
}

export async function createWorker(opts: WorkerOptions): Promise<WorkerGroup> {
  const tracing = startTracing(opts.tracing);
  const traced = tracing !== undefined;
  const openai = createProviderClient({ baseUrl: opts.baseUrl, apiKey: opts.apiKey, traced });
  // DashScope serves Batch Chat on a host of its own; an overridden base URL (emulator) serves both.
  const chatBaseUrl =
    opts.baseUrl === opts.profile.baseUrl ? (opts.profile.batchChatBaseUrl ?? opts.baseUrl) : opts.baseUrl;
  const chatOpenai = createBatchChatClient({ baseUrl: chatBaseUrl, apiKey: opts.apiKey, traced });
  const uploadsPerSecond = queueRate('upload', opts.profile.rateLimits);
  const listsPerSecond = queueRate('list', opts.profile.rateLimits);
  const activities = createActivities({
    openai,
    chatOpenai,
    profile: opts.profile,
    dataDir: opts.dataDir,
    ...(opts.storage ? { storage: opts.storage } : {}),
    ...(opts.scratchDir ? { scratchDir: opts.scratchDir } : {}),
    logger: opts.logger.child({ component: 'activities' }),
    ...(opts.mergeShardBudgetBytes ? { mergeShardBudgetBytes: opts.mergeShardBudgetBytes } : {}),
    ...(opts.maxInFlight ? { maxInFlight: opts.maxInFlight } : {}),
    ...(opts.unreachableAfterMs ? { unreachableAfterMs: opts.unreachableAfterMs } : {}),
    ...(uploadsPerSecond !== undefined ? { uploadsPerSecond } : {}),
    ...(listsPerSecond !== undefined ? { listsPerSecond } : {}),
    ...(opts.answers
      ? {
          answers: {
            store: answerStoreFor(opts, opts.answers),
            scope: providerScope(opts.profile.name, opts.baseUrl),
          },
        }
      : {}),
  });
  const common = {
    connection: opts.connection,
    namespace: opts.namespace,
    activities,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 20,
    ...(opts.codecKey ? { dataConverter: dataConverterFor(opts.codecKey) } : {}),
    ...workerTracing(tracing),
    ...(opts.buildId
      ? {
          workerDeploymentOptions: {
            version: { deploymentName: opts.taskQueue, buildId: opts.buildId },
            useWorkerVersioning: false as const,
          },
        }
      : {}),
  };
  const main = await Worker.create({
    ...common,
    taskQueue: opts.taskQueue,
    workflowBundle: await workflowBundleFor(opts.workflowBundle, traced, opts.logger),
  });
  // With the in-flight cap on, each create first lists the account's unfinished batches.
  const extra = opts.maxInFlight !== undefined ? { createBatch: { list: 1 } } : {};
  const callWorkers = await Promise.all(
    PACED_CLASSES.map(async (cls) => {
      const rate = queueRate(cls, opts.profile.rateLimits, extra);
      const worker = await Worker.create({
        ...common,
        taskQueue: callQueueName(opts.taskQueue, cls),
        // Server-side: every worker polling this queue gets its tasks at this rate in total. The
        // server may hand out a second's worth at once; the same rate on this worker alone spaces
        // the tasks it takes evenly, so that burst does not reach the provider as one.
        ...(rate !== undefined
          ? { maxTaskQueueActivitiesPerSecond: rate, maxActivitiesPerSecond: rate }
          : {}),
      });
      return { cls, worker, rate };
    }),
  );
  return new WorkerGroup(main, callWorkers);
}
