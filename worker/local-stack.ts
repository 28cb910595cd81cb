// A whole system on one machine: a Temporal server (started here, or one already running), the
// Batch API emulator and the in-process worker group, brought up in that order and closed in the
// reverse order. `batchpilot run`, the integration harness, the reliability rig and the benchmarks
// all assemble it from these parts, so a change to how a worker is built or stopped is made once.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { startEmulator, type EmulatorOptions, type RunningEmulator } from '../emulator/index.ts';
import { startDevServer, type DevServer, type DevServerOptions } from './dev-server.ts';
import { createWorker, type WorkerGroup, type WorkerOptions } from './worker.ts';

/**
 * Steps to undo, run last first. Every step runs even when one before it fails, so a stack that
 * came up only partly is still taken down completely.
 */
export class Teardown {
  private readonly steps: (() => Promise<unknown>)[] = [];

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) await step().catch(() => undefined);
  }
}

export interface RunningWorker {
  group: WorkerGroup;
  /** Settles when the group has stopped (after `stop()`, or on a fatal worker error). */
  running: Promise<void>;
  /** Shuts the group down, waits for it, then closes its connection; the same promise every call. */
  stop(): Promise<void>;
}

/** Opens a connection, builds the worker group on it and runs it. */
export async function runWorker(
  options: Omit<WorkerOptions, 'connection'>,
  connect: () => Promise<NativeConnection>,
): Promise<RunningWorker> {
  const connection = await connect();
  let group: WorkerGroup;
  try {
    group = await createWorker({ ...options, connection });
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw err;
  }
  const running = group.run();
  let stopped: Promise<void> | undefined;
  const stop = async () => {
    group.shutdown();
    try {
      await running;
    } finally {
      await connection.close();
    }
  };
  return { group, running, stop: () => (stopped ??= stop()) };
}

export interface LocalStackOptions {
  /** A running Temporal server to use; a dev server is started (with `devServer`) when absent. */
  temporalAddress?: string | undefined;
  devServer?: DevServerOptions;
  /** Told about the dev server as soon as it runs (before anything else can fail). */
  onServerStarted?: (server: DevServer) => void;
  /** The client; a plain connection to the address when absent. */
  connectClient?: (address: string) => Promise<Client>;
  /** Start an emulator with these options; none when absent. */
  emulator?: EmulatorOptions;
  /** Run an in-process worker; `baseUrl` defaults to the emulator's. None when absent. */
  worker?: Omit<WorkerOptions, 'connection' | 'baseUrl'> & { baseUrl?: string };
  /** The worker's connection; a plain one to the address when absent. */
  connectWorker?: (address: string) => Promise<NativeConnection>;
}

export interface LocalStack {
  address: string;
  client: Client;
  /** The dev server started here; undefined when an address was given. */
  server: DevServer | undefined;
  emulator: RunningEmulator | undefined;
  worker: RunningWorker | undefined;
  /** Stops worker, emulator, client and server, in that order. */
  close(): Promise<void>;
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const teardown = new Teardown();
  try {
    let address = opts.temporalAddress;
    let server: DevServer | undefined;
    if (!address) {
      const started = await startDevServer(opts.devServer);
      teardown.add(() => started.stop());
      opts.onServerStarted?.(started);
      server = started;
      address = started.address;
    }
    const at = address;
    const client = opts.connectClient
      ? await opts.connectClient(at)
      : new Client({ connection: await Connection.connect({ address: at }) });
    teardown.add(() => client.connection.close());
    let emulator: RunningEmulator | undefined;
    if (opts.emulator) {
      const started = await startEmulator(opts.emulator);
      teardown.add(() => started.close());
      emulator = started;
    }
    let worker: RunningWorker | undefined;
    if (opts.worker) {
      const baseUrl = opts.worker.baseUrl ?? emulator?.url;
      if (!baseUrl) throw new Error('startLocalStack: a worker needs worker.baseUrl or an emulator');
      const connect = opts.connectWorker ?? ((a: string) => NativeConnection.connect({ address: a }));
      const started = await runWorker({ ...opts.worker, baseUrl }, () => connect(at));
      teardown.add(() => started.stop());
      worker = started;
    }
    return { address: at, client, server, emulator, worker, close: () => teardown.run() };
  } catch (err) {
    await teardown.run();
    throw err;
  }
}
