// The Temporal server on PostgreSQL, configured by the environment variables the temporalio/server
// image reads (temporal-config/fleet.yaml renders them), with its schema set up and its namespace
// and search attributes created by the same scripts docker-compose.yml runs in the admin-tools image.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SEARCH_ATTRIBUTES } from '../../common/definitions.ts';
import { FLEET_DIR, type FleetBinaries } from './binaries.ts';
import { anyFreePort, freeMembershipPort } from './ports.ts';
import { startProcess, waitUntil, type FleetProcess } from './processes.ts';
import type { Postgres } from './postgres.ts';

/** What docker-compose.yml must agree on with the fleet (test/unit/docker-compose.test.ts checks). */
export const TEMPORAL_PERSISTENCE = { DB: 'postgres12', NUM_HISTORY_SHARDS: '4' } as const;
export const FLEET_NAMESPACE = 'default';
/** batchpilot's search attributes as create-namespace.sh takes them: `Name=Type …`. */
export const SEARCH_ATTRIBUTES_SPEC = Object.values(SEARCH_ATTRIBUTES)
  .map((a) => `${a.name}=${a.type}`)
  .join(' ');
export const DYNAMIC_CONFIG_FILE = path.join(FLEET_DIR, 'dynamicconfig.yaml');

const run = (file: string, env: NodeJS.ProcessEnv, logFile: string) =>
  new Promise<void>((resolve, reject) => {
    execFile('sh', [file], { env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      fs.appendFileSync(logFile, stdout + stderr);
      if (err)
        reject(
          new Error(`${path.basename(file)} failed (${err.message.split('\n')[0]}):\n${stdout}${stderr}`),
        );
      else resolve();
    });
  });

/** PATH with the binaries under the names the scripts call them (as in Temporal's images). */
function toolsPath(bin: FleetBinaries): string {
  return [bin.temporalServerDir, path.dirname(bin.temporalCli), process.env.PATH ?? ''].join(path.delimiter);
}

export function schemaEnvironment(pg: Postgres): Record<string, string> {
  return {
    SQL_PLUGIN: TEMPORAL_PERSISTENCE.DB,
    SQL_HOST: pg.host,
    SQL_PORT: String(pg.port),
    SQL_USER: pg.user,
    SQL_PASSWORD: '',
  };
}

export async function setupSchema(bin: FleetBinaries, pg: Postgres, logDir: string): Promise<void> {
  const env = { PATH: toolsPath(bin), ...schemaEnvironment(pg) };
  await run(path.join(FLEET_DIR, 'setup-schema.sh'), env, path.join(logDir, 'setup-schema.log'));
}

export function namespaceEnvironment(address: string): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: FLEET_NAMESPACE,
    BATCHPILOT_SEARCH_ATTRIBUTES: SEARCH_ATTRIBUTES_SPEC,
  };
}

export async function createNamespace(bin: FleetBinaries, address: string, logDir: string): Promise<void> {
  const env = { PATH: toolsPath(bin), HOME: process.env.HOME ?? '/root', ...namespaceEnvironment(address) };
  await run(path.join(FLEET_DIR, 'create-namespace.sh'), env, path.join(logDir, 'create-namespace.log'));
}

export interface TemporalPorts {
  grpc: number;
  http: number;
  history: number;
  matching: number;
  worker: number;
  membership: { frontend: number; history: number; matching: number; worker: number };
}

export async function pickTemporalPorts(): Promise<TemporalPorts> {
  return {
    grpc: await anyFreePort(),
    http: await anyFreePort(),
    history: await anyFreePort(),
    matching: await anyFreePort(),
    worker: await anyFreePort(),
    membership: {
      frontend: await freeMembershipPort(),
      history: await freeMembershipPort(),
      matching: await freeMembershipPort(),
      worker: await freeMembershipPort(),
    },
  };
}

/** The temporalio/server image's variables (compose sets the first ones) plus the ports chosen here. */
export function serverEnvironment(pg: Postgres, ports: TemporalPorts): Record<string, string> {
  return {
    ...TEMPORAL_PERSISTENCE,
    DB_PORT: String(pg.port),
    POSTGRES_SEEDS: pg.host,
    POSTGRES_USER: pg.user,
    POSTGRES_PWD: '',
    BIND_ON_IP: '127.0.0.1',
    DYNAMIC_CONFIG_FILE_PATH: DYNAMIC_CONFIG_FILE,
    FRONTEND_GRPC_PORT: String(ports.grpc),
    FRONTEND_HTTP_PORT: String(ports.http),
    FRONTEND_MEMBERSHIP_PORT: String(ports.membership.frontend),
    HISTORY_GRPC_PORT: String(ports.history),
    HISTORY_MEMBERSHIP_PORT: String(ports.membership.history),
    MATCHING_GRPC_PORT: String(ports.matching),
    MATCHING_MEMBERSHIP_PORT: String(ports.membership.matching),
    WORKER_GRPC_PORT: String(ports.worker),
    WORKER_MEMBERSHIP_PORT: String(ports.membership.worker),
  };
}

export interface TemporalServer {
  address: string;
  process: FleetProcess;
  stop(): Promise<void>;
}

/** Healthy means `temporal operator cluster health` says SERVING and our own process still runs. */
async function healthy(bin: FleetBinaries, address: string): Promise<boolean> {
  return new Promise((resolve) =>
    execFile(bin.temporalCli, ['operator', 'cluster', 'health', '--address', address], (err, stdout) =>
      resolve(!err && /SERVING/.test(stdout)),
    ),
  );
}

export async function startTemporalServer(
  bin: FleetBinaries,
  pg: Postgres,
  ports: TemporalPorts,
  logDir: string,
): Promise<TemporalServer> {
  const address = `127.0.0.1:${ports.grpc}`;
  const proc = startProcess(
    'temporal-server',
    bin.temporalServer,
    ['--root', FLEET_DIR, '--config', 'temporal-config', '--env', 'fleet', '--allow-no-auth', 'start'],
    logDir,
    { env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', ...serverEnvironment(pg, ports) } },
  );
  await waitUntil(`the Temporal server on ${address}`, () => healthy(bin, address), proc, 120_000);
  return { address, process: proc, stop: () => proc.stop('SIGTERM', 20_000) };
}
