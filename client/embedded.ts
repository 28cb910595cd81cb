// What `batchpilot run` brings up by itself: an embedded Temporal dev server when none is
// configured, the local emulator when no API key is set, and an in-process worker.
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../common/config.ts';
import { startEmulator, type RunningEmulator } from '../emulator/index.ts';
import { startDevServer, type DevServer } from '../worker/dev-server.ts';
import { installRuntime } from '../worker/runtime.ts';
import { createWorker, type WorkerGroup } from '../worker/worker.ts';
import { connectClient, connectWorker } from './temporal.ts';

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
  const notes: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    installRuntime(logger, config.metricsAddress, []);
    let address = config.temporal.address;
    let server: DevServer | undefined;
    if (!address) {
      server = await startDevServer({
        headless: false,
        ownGroupDieWithParent: true,
        ...(opts.dbFilename ? { dbFilename: opts.dbFilename } : {}),
      });
      if (server.process.pid !== undefined) opts.onServerStarted?.(server.process.pid);
      closers.push(() => server!.stop());
      address = server.address;
      notes.push(`embedded Temporal dev server on ${address}, Web UI http://127.0.0.1:${server.uiPort}`);
    }
    const client = await connectClient(config, address);
    closers.push(() => client.connection.close());
    let baseUrl = config.provider.baseUrl!;
    if (config.provider.implicitEmulator) {
      const emulator: RunningEmulator = await startEmulator({
        port: 0,
        dataDir: path.join(config.dataDir, '.emulator'),
        logger: logger.child({ component: 'emulator' }),
      });
      closers.push(() => emulator.close());
      baseUrl = emulator.url;
      notes.push(
        `no API key set: using the local Batch API emulator at ${emulator.url} (answers are synthetic)`,
      );
    }
    const connection = await connectWorker(config, address);
    closers.push(() => connection.close());
    const worker: WorkerGroup = await createWorker({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      dataDir: config.dataDir,
      profile: config.provider.profile,
      baseUrl,
      apiKey: config.provider.apiKey,
      logger,
      ...(config.maxInFlight ? { maxInFlight: config.maxInFlight } : {}),
      ...(config.codecKey ? { codecKey: config.codecKey } : {}),
      ...(config.workflowBundle ? { workflowBundle: { codePath: config.workflowBundle } } : {}),
      tracing: config.tracing,
      buildId: config.buildId,
      ...(config.unreachableAfterMs ? { unreachableAfterMs: config.unreachableAfterMs } : {}),
    });
    const running = worker.run();
    closers.push(async () => {
      worker.shutdown();
      await running;
    });
    return { client, notes, close };
  } catch (err) {
    await close();
    throw err;
  }
}
