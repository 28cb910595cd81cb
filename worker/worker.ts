// Builds a batchpilot worker: the provider client, the activities and the workflow bundle.
import path from 'node:path';
import type { NativeConnection } from '@temporalio/worker';
import { Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities } from '../activities/index.ts';
import { createBatchChatClient, createProviderClient } from '../activities/provider-client.ts';
import { dataConverterFor } from '../common/codec.ts';
import type { Profile } from '../common/profiles.ts';

// index.ts beside the sources, index.js in a build: the same extension as this file's.
export const WORKFLOWS_PATH = path.join(
  import.meta.dirname,
  '..',
  'workflows',
  `index${path.extname(import.meta.filename)}`,
);

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  dataDir: string;
  profile: Profile;
  baseUrl: string;
  apiKey: string | undefined;
  logger: Logger;
  /** A prebuilt bundle (tests and `run` reuse one); built from workflows/ when absent. */
  workflowBundle?: WorkflowBundleWithSourceMap | { codePath: string };
  maxConcurrentActivities?: number;
  mergeShardBudgetBytes?: number;
  /** BATCHPILOT_MAX_IN_FLIGHT. */
  maxInFlight?: number;
  /** BATCHPILOT_UNREACHABLE_AFTER in ms. */
  unreachableAfterMs?: number;
  /** BATCHPILOT_CODEC_KEY: encrypt every payload (common/codec.ts). */
  codecKey?: string;
}

/** Bundles the workflow code once (webpack + swc: a few seconds). */
export async function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
}

const noop = () => undefined;
const quietBundlerLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

export async function createWorker(opts: WorkerOptions): Promise<Worker> {
  const openai = createProviderClient({ baseUrl: opts.baseUrl, apiKey: opts.apiKey });
  // DashScope serves Batch Chat on a host of its own; an overridden base URL (emulator) serves both.
  const chatBaseUrl =
    opts.baseUrl === opts.profile.baseUrl ? (opts.profile.batchChatBaseUrl ?? opts.baseUrl) : opts.baseUrl;
  const chatOpenai = createBatchChatClient({ baseUrl: chatBaseUrl, apiKey: opts.apiKey });
  const activities = createActivities({
    openai,
    chatOpenai,
    profile: opts.profile,
    dataDir: opts.dataDir,
    logger: opts.logger.child({ component: 'activities' }),
    ...(opts.mergeShardBudgetBytes ? { mergeShardBudgetBytes: opts.mergeShardBudgetBytes } : {}),
    ...(opts.maxInFlight ? { maxInFlight: opts.maxInFlight } : {}),
    ...(opts.unreachableAfterMs ? { unreachableAfterMs: opts.unreachableAfterMs } : {}),
  });
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities,
    workflowBundle: opts.workflowBundle ?? (await bundleWorkflows()),
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 20,
    ...(opts.codecKey ? { dataConverter: dataConverterFor(opts.codecKey) } : {}),
  });
}
