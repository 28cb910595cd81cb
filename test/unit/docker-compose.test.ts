// docker-compose.yml cannot run here (no Docker engine). Its test is the process fleet
// (scripts/fleet/, test/fleet/), so this checks that the two describe the same deployment: the same
// Temporal server version, schema and namespace scripts, variables, namespace and search attributes,
// worker and emulator commands; and that everything compose names exists in the project.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '../../common/config.ts';
import { SEARCH_ATTRIBUTES } from '../../common/definitions.ts';
import { COMMANDS } from '../../client/commands/index.ts';
import { envShValue } from '../../scripts/fleet/binaries.ts';
import { emulatorArgs } from '../../scripts/fleet/emulator.ts';
import type { Postgres } from '../../scripts/fleet/postgres.ts';
import {
  DYNAMIC_CONFIG_FILE,
  FLEET_NAMESPACE,
  namespaceEnvironment,
  schemaEnvironment,
  SEARCH_ATTRIBUTES_SPEC,
  serverEnvironment,
  TEMPORAL_PERSISTENCE,
  type TemporalPorts,
} from '../../scripts/fleet/temporal.ts';
import { WORKER_COMMAND, workerEnvironment } from '../../scripts/fleet/workers.ts';

const root = path.join(import.meta.dirname, '..', '..');

interface Service {
  build?: string;
  image?: string;
  command?: string[] | string;
  entrypoint?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  profiles?: string[];
}

const text = fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
const compose = parse(text) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const svc = (name: string) => compose.services[name]!;
const keys = (env: Record<string, unknown> | undefined) => Object.keys(env ?? {}).sort();
const serverVersion = envShValue('TEMPORAL_SERVER_VERSION').replace(/^v/, '');

// Stand-ins for what the fleet picks at start; only names and fixed values are compared.
const pg: Postgres = { host: '127.0.0.1', port: 5999, user: 'temporal' } as Postgres;
const ports: TemporalPorts = {
  grpc: 1,
  http: 2,
  history: 3,
  matching: 4,
  worker: 5,
  membership: { frontend: 6, history: 7, matching: 8, worker: 9 },
};

/** The script a one-shot service runs from the mounted scripts/fleet folder. */
function mountedScript(name: string): string {
  const s = svc(name);
  const mount = s.volumes?.find((v) => v.startsWith('./scripts/fleet:'))?.split(':')[1];
  expect(mount, `${name} mounts ./scripts/fleet`).toBeDefined();
  const script = s.entrypoint?.find((a) => a.startsWith(`${mount}/`));
  expect(script, `${name} runs a script from ${mount}`).toBeDefined();
  return path.join(root, 'scripts', 'fleet', path.relative(mount!, script!));
}

describe('docker-compose.yml', () => {
  it('has the production-shaped services, each with a restart policy, and health checks', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'emulator',
      'postgresql',
      'temporal',
      'temporal-schema',
      'temporal-setup',
      'temporal-ui',
      'worker',
    ]);
    for (const [name, s] of Object.entries(compose.services)) expect(s.restart, name).toBeDefined();
    for (const name of ['postgresql', 'temporal', 'worker', 'emulator'])
      expect(svc(name).healthcheck, name).toBeDefined();
    expect(svc('temporal').healthcheck!.test.join(' ')).toContain('temporal operator cluster health');
  });

  it('runs the Temporal server the fleet builds, set up by the admin tools of that version, no auto-setup', () => {
    expect(svc('temporal').image).toBe(`temporalio/server:${serverVersion}`);
    for (const name of ['temporal-schema', 'temporal-setup'])
      expect(svc(name).image, name).toMatch(
        new RegExp(`^temporalio/admin-tools:${serverVersion.replace(/\./g, '\\.')}(-|$)`),
      );
    for (const [name, s] of Object.entries(compose.services))
      expect(s.image ?? '', name).not.toMatch(/auto-setup/);
    expect(text).not.toMatch(/\|\|\s*true/);
    expect(svc('temporal').depends_on!['temporal-schema']!.condition).toBe('service_completed_successfully');
    expect(svc('temporal-ui').image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
  });

  it('sets up the schema with the fleet script and the variables the fleet gives it', () => {
    expect(mountedScript('temporal-schema')).toBe(path.join(root, 'scripts', 'fleet', 'setup-schema.sh'));
    const env = svc('temporal-schema').environment!;
    expect(keys(env)).toEqual(keys(schemaEnvironment(pg)));
    expect(env.SQL_PLUGIN).toBe(TEMPORAL_PERSISTENCE.DB);
  });

  it('configures the server through the variables the fleet renders its config from', () => {
    const env = svc('temporal').environment!;
    const fleet = serverEnvironment(pg, ports);
    for (const key of Object.keys(env)) expect(Object.keys(fleet), key).toContain(key);
    expect(String(env.DB)).toBe(TEMPORAL_PERSISTENCE.DB);
    expect(String(env.NUM_HISTORY_SHARDS)).toBe(TEMPORAL_PERSISTENCE.NUM_HISTORY_SHARDS);
    // The same dynamic config file, mounted.
    const mount = svc('temporal')
      .volumes!.find((v) => v.startsWith('./scripts/fleet:'))!
      .split(':')[1]!;
    expect(
      path.join(root, 'scripts', 'fleet', path.relative(mount, String(env.DYNAMIC_CONFIG_FILE_PATH))),
    ).toBe(DYNAMIC_CONFIG_FILE);
  });

  it("creates the fleet's namespace and exactly batchpilot's search attributes with the fleet script", () => {
    expect(mountedScript('temporal-setup')).toBe(path.join(root, 'scripts', 'fleet', 'create-namespace.sh'));
    const env = svc('temporal-setup').environment!;
    expect(keys(env)).toEqual(keys(namespaceEnvironment('x:1')));
    expect(env.TEMPORAL_NAMESPACE).toBe(FLEET_NAMESPACE);
    expect(env.BATCHPILOT_SEARCH_ATTRIBUTES).toBe(SEARCH_ATTRIBUTES_SPEC);
    for (const a of Object.values(SEARCH_ATTRIBUTES))
      expect(SEARCH_ATTRIBUTES_SPEC).toContain(`${a.name}=${a.type}`);
    expect(svc('worker').depends_on!['temporal-setup']!.condition).toBe('service_completed_successfully');
  });

  it('configures the worker with the variables the fleet gives its workers, all read by batchpilot', () => {
    const env = svc('worker').environment!;
    const fleet = workerEnvironment(
      {
        temporalAddress: 'x:1',
        taskQueue: 'q',
        dataDir: '/d',
        provider: 'emulator',
        baseUrl: 'http://e/v1',
        apiKey: 'k',
        maxInFlight: 5,
        workflowBundle: '/b.js',
      },
      9464,
    );
    // The fleet's workers also get a prebuilt workflow bundle so they start in a second.
    const fleetOnly = ['BATCHPILOT_WORKFLOW_BUNDLE'];
    expect(keys(env)).toEqual(keys(fleet).filter((k) => !fleetOnly.includes(k)));
    for (const key of Object.keys(env)) expect(CONFIG_VARIABLES, key).toContain(key);
    expect(env.TEMPORAL_NAMESPACE).toBe(FLEET_NAMESPACE);
    expect(svc('worker').command).toEqual(WORKER_COMMAND);
  });

  it('keeps the emulator behind a profile, and a real provider away from it', () => {
    expect(svc('emulator').profiles).toEqual(['emulator']);
    const env = svc('worker').environment!;
    expect(env.BATCHPILOT_BASE_URL).toBe('${BATCHPILOT_BASE_URL:-}');
    // No default provider: compose refuses to start until one is chosen.
    expect(String(env.BATCHPILOT_PROVIDER)).toMatch(/^\$\{BATCHPILOT_PROVIDER:\?/);
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.profiles?.includes('emulator')) continue;
      expect(Object.keys(s.depends_on ?? {}), name).not.toContain('emulator');
      for (const v of Object.values(s.environment ?? {}))
        expect(String(v), name).not.toMatch(/emulator:8787/);
    }
    const flags = (args: string[]) => args.filter((a) => a.startsWith('--'));
    expect(flags(svc('emulator').command as string[])).toEqual(flags(emulatorArgs('h', 1, '/d')));
  });

  it('builds batchpilot services from the Dockerfile in the repo and runs real commands', () => {
    expect(fs.existsSync(path.join(root, 'Dockerfile'))).toBe(true);
    const names = new Set(COMMANDS.map((c) => c.name));
    for (const name of ['worker', 'emulator']) {
      const s = svc(name);
      expect(s.build).toBe('.');
      const cmd = Array.isArray(s.command) ? s.command[0] : s.command;
      expect(names.has(cmd!), `command ${cmd}`).toBe(true);
    }
  });

  it('mounts the data root and declares every named volume', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        if (v.startsWith('./')) continue;
        expect(Object.keys(compose.volumes), `${name}: ${v}`).toContain(v.split(':')[0]);
      }
    }
    expect(svc('worker').volumes).toContain('batchpilot-data:/data');
    expect(svc('worker').environment!.BATCHPILOT_DATA_DIR).toBe('/data');
    expect(svc('worker').ports).toContain('9464:9464');
    expect(svc('worker').environment!.BATCHPILOT_METRICS_ADDRESS).toBe('0.0.0.0:9464');
  });
});
