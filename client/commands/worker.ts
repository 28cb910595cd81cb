// `batchpilot worker`: the production entry point, one worker process on the task queue.
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../common/config.ts';
import { createLogger } from '../../common/logger.ts';
import { installRuntime } from '../../worker/runtime.ts';
import { createWorker } from '../../worker/worker.ts';
import { describeRateLimits } from '../../common/rate-limits.ts';
import { describeConnection } from '../../common/temporal-connection.ts';
import { DEFAULT_TEMPORAL_ADDRESS, connectWorker } from '../temporal.ts';
import type { Command } from '../command.ts';
import { workerOptionsFromConfig } from '../worker-options.ts';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run a worker (production entry point)',
  positionals: [],
  flags: {},
  details:
    'Configured by the environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*,\nTEMPORAL_CONFIG_FILE/TEMPORAL_PROFILE, BATCHPILOT_TASK_QUEUE, BATCHPILOT_PROVIDER, BATCHPILOT_API_KEY,\nBATCHPILOT_DATA_DIR, BATCHPILOT_RATE_LIMITS, BATCHPILOT_WORKFLOW_BUNDLE, BATCHPILOT_CODEC_KEY, BATCHPILOT_METRICS_ADDRESS, BATCHPILOT_BUILD_ID,\nOTEL_EXPORTER_OTLP_ENDPOINT, LOG_LEVEL.\nStops cleanly on SIGINT/SIGTERM.',
  async run({ env, stderr }) {
    const config = loadConfig(env);
    const logger = createLogger({ level: config.logLevel });
    installRuntime(logger, config.metricsAddress);
    const address = config.temporal.address ?? DEFAULT_TEMPORAL_ADDRESS;
    const connection = await connectWorker(config, address);
    const worker = await createWorker({
      ...workerOptionsFromConfig(config, logger),
      connection,
      baseUrl: config.provider.baseUrl!,
    });
    const dataDir = path.resolve(config.dataDir);
    fs.mkdirSync(dataDir, { recursive: true });
    const baseUrl = config.provider.baseUrl!;
    logger.info(
      {
        address,
        namespace: config.temporal.namespace,
        connection: describeConnection(config.temporal),
        taskQueue: config.temporal.taskQueue,
        provider: config.provider.profile.name,
        baseUrl,
        dataDir,
        buildId: worker.options.buildId,
        pacing: Object.fromEntries(worker.callWorkers.map((c) => [c.cls, c.rate ?? 'none'])),
      },
      'worker started',
    );
    // Said on stderr whatever LOG_LEVEL is: a worker that quietly sends jobs somewhere unexpected,
    // or reads paths under a root the client did not expect, only shows it by hanging.
    stderr.write(
      `batchpilot worker: task queue ${config.temporal.taskQueue} on ${address}; provider ${config.provider.profile.name} at ${baseUrl}; data root ${dataDir} (relative paths of jobs resolve there)\n`,
    );
    // Said once: an unpaced fleet spends the account's quota on 429s; a paced one waits instead.
    stderr.write(
      `batchpilot worker: provider rate limits ${describeRateLimits(config.provider.profile.rateLimits)}; ` +
        `provider calls run on ${config.temporal.taskQueue}-calls-<class>, paced across every worker of the fleet (BATCHPILOT_RATE_LIMITS to change)\n`,
    );
    if (config.provider.implicitEmulator)
      stderr.write(
        `batchpilot worker: WARNING: no API key is set, so every job goes to the local Batch API emulator at ${baseUrl}, which must be running ("batchpilot emulator"). Set BATCHPILOT_PROVIDER and BATCHPILOT_API_KEY for a real provider.\n`,
      );
    await worker.run();
    await connection.close();
    return 0;
  },
};
