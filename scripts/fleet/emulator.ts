// The Batch API emulator as its own process (`batchpilot emulator`), started with the flags that
// docker-compose.yml's emulator service uses, for fleets that run without a real provider.
import fs from 'node:fs';
import path from 'node:path';
import type { EmulatorStats, FaultSettings } from '../../emulator/index.ts';
import { FLEET_DIR } from './binaries.ts';
import { anyFreePort } from './ports.ts';
import { startProcess, waitUntil, type FleetProcess } from './processes.ts';

const BATCHPILOT = path.join(FLEET_DIR, '..', '..', 'bin', 'batchpilot.ts');

export function emulatorArgs(host: string, port: number, dataDir: string): string[] {
  return ['emulator', '--host', host, '--port', String(port), '--data-dir', dataDir];
}

export interface FleetEmulator {
  /** The base URL workers call (`…/v1`). */
  url: string;
  process: FleetProcess;
  stats(): Promise<EmulatorStats>;
  stop(): Promise<void>;
}

export async function startFleetEmulator(opts: {
  root: string;
  logDir: string;
  faults?: FaultSettings;
}): Promise<FleetEmulator> {
  fs.mkdirSync(opts.root, { recursive: true });
  const port = await anyFreePort();
  const args = emulatorArgs('127.0.0.1', port, path.join(opts.root, 'emulator'));
  if (opts.faults) {
    const file = path.join(opts.root, 'emulator-faults.json');
    fs.writeFileSync(file, JSON.stringify(opts.faults));
    args.push('--faults', file);
  }
  const proc = startProcess('emulator', process.execPath, [BATCHPILOT, ...args], opts.logDir, {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'warn' },
  });
  const base = `http://127.0.0.1:${port}`;
  const stats = async () => {
    const res = await fetch(`${base}/_emulator/stats`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`emulator stats: HTTP ${res.status}`);
    return (await res.json()) as EmulatorStats;
  };
  await waitUntil(`the emulator on ${base}`, async () => (await stats(), true), proc);
  return { url: `${base}/v1`, process: proc, stats, stop: () => proc.stop() };
}
