// A production-shaped batchpilot deployment as plain processes on one machine, no Docker: the
// topology of docker-compose.yml (PostgreSQL, schema, Temporal server, namespace and search
// attributes, batchpilot workers) plus S3-compatible object storage. Every port is chosen free at
// start; stop() (or the exit of the Node process that started it) ends everything it started.
//
//   const fleet = await startFleet({ workers: 2, worker: { taskQueue, provider: 'emulator', baseUrl } });
//   … fleet.temporal.address …
//   await fleet.stop();
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FaultSettings } from '../../emulator/index.ts';
import { fleetBinaries, type FleetBinaries } from './binaries.ts';
import { startFleetEmulator, type FleetEmulator } from './emulator.ts';
import { anyFreePort } from './ports.ts';
import { startPostgres, type Postgres } from './postgres.ts';
import { newCredentials, startObjectStore, type ObjectStore, type S3Credentials } from './s3.ts';
import {
  createNamespace,
  FLEET_NAMESPACE,
  pickTemporalPorts,
  setupSchema,
  startTemporalServer,
  type TemporalServer,
} from './temporal.ts';
import { startWorker, type FleetWorker, type WorkerSettings } from './workers.ts';

export interface FleetOptions {
  /** The fleet's folder (PostgreSQL data, logs, buckets, the workers' data root); a new temporary one by default. */
  root?: string;
  /** How many `batchpilot worker` processes to start (default 0). */
  workers?: number;
  /** The workers' settings; the Temporal address comes from the fleet, the data root defaults to `<root>/data`. */
  worker?: Omit<WorkerSettings, 'temporalAddress' | 'dataDir'> & { dataDir?: string };
  /** Start versitygw (default true), with these credentials or made-up ones. */
  objectStore?: boolean | S3Credentials;
  /** Run `batchpilot emulator` as the provider (with these faults); workers call it unless `worker.baseUrl` is set. */
  emulator?: boolean | { faults?: FaultSettings };
  /** Leave the folder in place on stop (for reading the logs). */
  keep?: boolean;
}

export interface Fleet {
  root: string;
  logDir: string;
  dataDir: string;
  postgres: Postgres;
  temporal: { address: string; namespace: string; server: TemporalServer };
  objectStore: ObjectStore | undefined;
  emulator: FleetEmulator | undefined;
  workers: FleetWorker[];
  /** Seconds each step of the start took. */
  timings: Record<string, number>;
  /** Starts one more worker; `settings` override the fleet's (e.g. a data root of its own). */
  startWorker(
    name?: string,
    settings?: Partial<Omit<WorkerSettings, 'temporalAddress'>>,
  ): Promise<FleetWorker>;
  /** Stops the Temporal server (SIGTERM, or SIGKILL like a crash) and starts it again on the same ports. */
  restartTemporal(how?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Brings the fleet up in dependency order, each step timed. Long because it is a list: each step
 * is one call into postgres.ts, temporal.ts, s3.ts, emulator.ts or workers.ts, and the stoppers
 * each step registers are what stop() runs in reverse.
 */
export async function startFleet(opts: FleetOptions = {}): Promise<Fleet> {
  const bin: FleetBinaries = fleetBinaries();
  const root = opts.root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-fleet-'));
  fs.mkdirSync(root, { recursive: true });
  const logDir = path.join(root, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const dataDir = opts.worker?.dataDir ?? path.join(root, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const timings: Record<string, number> = {};
  const timed = async <T>(step: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await f();
    timings[step] = Math.round(performance.now() - t0) / 1000;
    return v;
  };
  const stoppers: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => undefined);
    if (!opts.keep && !opts.root) fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    const postgres = await timed('postgres', async () =>
      startPostgres({ root, bin: bin.postgresBin, port: await anyFreePort() }),
    );
    stoppers.push(() => postgres.stop());
    await timed('schema', () => setupSchema(bin, postgres, logDir));
    const ports = await pickTemporalPorts();
    let server = await timed('temporal', () => startTemporalServer(bin, postgres, ports, logDir));
    stoppers.push(() => server.stop());
    await timed('namespace', () => createNamespace(bin, server.address, logDir));
    let objectStore: ObjectStore | undefined;
    if (opts.objectStore !== false) {
      const credentials = typeof opts.objectStore === 'object' ? opts.objectStore : newCredentials();
      objectStore = await timed('objectStore', async () =>
        startObjectStore({ bin: bin.versitygw, root, port: await anyFreePort(), logDir, credentials }),
      );
      stoppers.push(() => objectStore!.stop());
    }
    let emulator: FleetEmulator | undefined;
    if (opts.emulator) {
      const faults = typeof opts.emulator === 'object' ? opts.emulator.faults : undefined;
      emulator = await timed('emulator', () =>
        startFleetEmulator({ root, logDir, ...(faults ? { faults } : {}) }),
      );
      stoppers.push(() => emulator!.stop());
    }
    const workers: FleetWorker[] = [];
    let count = 0;
    const fleet: Fleet = {
      root,
      logDir,
      dataDir,
      postgres,
      temporal: { address: server.address, namespace: FLEET_NAMESPACE, server },
      objectStore,
      emulator,
      workers,
      timings,
      async startWorker(name = `worker-${++count}`, settings = {}) {
        if (!opts.worker) throw new Error('startFleet: pass `worker` settings to start batchpilot workers');
        const w = await startWorker(
          name,
          {
            ...(emulator ? { baseUrl: emulator.url } : {}),
            ...opts.worker,
            dataDir,
            ...settings,
            temporalAddress: server.address,
          },
          logDir,
        );
        workers.push(w);
        stoppers.push(() => w.stop());
        return w;
      },
      async restartTemporal(how = 'SIGTERM') {
        if (how === 'SIGKILL') await server.process.stop('SIGKILL');
        else await server.stop();
        server = await startTemporalServer(bin, postgres, ports, logDir);
        fleet.temporal.server = server;
        stoppers.push(() => server.stop());
      },
      stop: stopAll,
    };
    for (let i = 0; i < (opts.workers ?? 0); i++) await fleet.startWorker();
    return fleet;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
