// The worker's options as the configuration gives them, shared by `batchpilot worker` and the
// in-process worker of `batchpilot run`, so both run the same worker for the same environment.
import type { Logger } from 'pino';
import type { Config } from '../common/config.ts';
import type { WorkerOptions } from '../worker/worker.ts';

/** Everything but the connection and the provider URL (the configured one, or an emulator's). */
export function workerOptionsFromConfig(
  config: Config,
  logger: Logger,
): Omit<WorkerOptions, 'connection' | 'baseUrl'> {
  return {
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    dataDir: config.dataDir,
    ...(config.storage ? { storage: config.storage } : {}),
    ...(config.scratchDir ? { scratchDir: config.scratchDir } : {}),
    profile: config.provider.profile,
    apiKey: config.provider.apiKey,
    logger,
    ...(config.maxInFlight ? { maxInFlight: config.maxInFlight } : {}),
    ...(config.answers ? { answers: config.answers } : {}),
    ...(config.unreachableAfterMs ? { unreachableAfterMs: config.unreachableAfterMs } : {}),
    ...(config.codecKey ? { codecKey: config.codecKey } : {}),
    ...(config.workflowBundle ? { workflowBundle: { codePath: config.workflowBundle } } : {}),
    tracing: config.tracing,
    buildId: config.buildId,
  };
}
