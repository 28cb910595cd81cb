// docker-compose.yml cannot run here (no Docker engine), so this checks that everything it names
// exists in the project: commands, environment variables, search attributes, ports and volumes.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '../../common/config.ts';
import { SEARCH_ATTRIBUTES } from '../../common/definitions.ts';
import { COMMANDS } from '../../client/commands/index.ts';

const root = path.join(import.meta.dirname, '..', '..');

interface Service {
  build?: string;
  image?: string;
  command?: string[] | string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: unknown;
  depends_on?: Record<string, unknown>;
}

const compose = parse(fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};

describe('docker-compose.yml', () => {
  it('has the production-shaped services with health checks', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'emulator',
      'postgresql',
      'temporal',
      'temporal-setup',
      'temporal-ui',
      'worker',
    ]);
    for (const name of ['postgresql', 'temporal', 'emulator'])
      expect(compose.services[name]!.healthcheck, name).toBeDefined();
  });
  it('builds batchpilot services from the Dockerfile in the repo and runs real commands', () => {
    expect(fs.existsSync(path.join(root, 'Dockerfile'))).toBe(true);
    const names = new Set(COMMANDS.map((c) => c.name));
    for (const name of ['worker', 'emulator']) {
      const svc = compose.services[name]!;
      expect(svc.build).toBe('.');
      const cmd = Array.isArray(svc.command) ? svc.command[0] : svc.command;
      expect(names.has(cmd!), `command ${cmd}`).toBe(true);
    }
  });
  it('sets only environment variables the worker reads', () => {
    const env = compose.services.worker!.environment!;
    for (const key of Object.keys(env)) expect(CONFIG_VARIABLES, key).toContain(key);
    expect(env.BATCHPILOT_DATA_DIR).toBe('/data');
  });
  it("registers exactly batchpilot's search attributes", () => {
    const setup = String(compose.services['temporal-setup']!.command);
    for (const a of Object.values(SEARCH_ATTRIBUTES))
      expect(setup).toContain(`--name ${a.name} --type ${a.type}`);
  });
  it('mounts the shared data root and declares every named volume', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const v of svc.volumes ?? [])
        expect(Object.keys(compose.volumes), `${name}: ${v}`).toContain(v.split(':')[0]);
    }
    expect(compose.services.worker!.volumes).toContain('batchpilot-data:/data');
    expect(compose.services.worker!.ports).toContain('9464:9464');
    expect(compose.services.worker!.environment!.BATCHPILOT_METRICS_ADDRESS).toBe('0.0.0.0:9464');
  });
});
