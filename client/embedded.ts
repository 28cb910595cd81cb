// What `batchpilot run` brings up by itself: an embedded Temporal dev server when none is
// configured, the local emulator when no API key is set, and an in-process worker.
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../common/config.ts';
import { startLocalStack } from '../worker/local-stack.ts';
import { installRuntime } from '../worker/runtime.ts';
import { connectClient, connectWorker } from './temporal.ts';
import { workerOptionsFromConfig } from './worker-options.ts';

export interface Embedded {
  client: Client;
  /** Human notes on what was started, printed before the job. */
  notes: string[];
  close(): Promise<void>;
}

export interface BringUpOptions {
  /** Keep the embedded server's state in this SQLite file, so the job survives `run` itself. */
  dbFilename?: string;
  /** Told the embedded server's process id (its group leader) as soon as it runs. */
  onServerStarted?: (pid: number) => void;
}

export async function bringUp(config: Config, logger: Logger, opts: BringUpOptions = {}): Promise<Embedded> {
  installRuntime(logger, config.metricsAddress, []);
  const stack = await startLocalStack({
    temporalAddress: config.temporal.address,
    devServer: {
      headless: false,
      ownGroupDieWithParent: true,
      ...(opts.dbFilename ? { dbFilename: opts.dbFilename } : {}),
    },
    onServerStarted: (server) => {
      if (server.process.pid !== undefined) opts.onServerStarted?.(server.process.pid);
    },
    connectClient: (address) => connectClient(config, address),
    ...(config.provider.implicitEmulator
      ? {
          emulator: {
            port: 0,
            dataDir: path.join(config.dataDir, '.emulator'),
            logger: logger.child({ component: 'emulator' }),
          },
        }
      : {}),
    connectWorker: (address) => connectWorker(config, address),
    worker: {
      ...workerOptionsFromConfig(config, logger),
      ...(config.provider.implicitEmulator ? {} : { baseUrl: config.provider.baseUrl! }),
    },
  });
  const notes: string[] = [];
  if (stack.server)
    notes.push(
      `embedded Temporal dev server on ${stack.address}, Web UI http://127.0.0.1:${stack.server.uiPort}`,
    );
  if (stack.emulator)
    notes.push(
      `no API key set: using the local Batch API emulator at ${stack.emulator.url} (answers are synthetic)`,
    );
  return { client: stack.client, notes, close: () => stack.close() };
}
