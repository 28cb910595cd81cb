// Small helpers shared by the merge, orchestration, polling and faults benchmarks: the data folder,
// medians, byte and time formats, a results table, and child processes that report JSON.
import { spawn } from 'node:child_process';
import path from 'node:path';

export const DATA = path.join(import.meta.dirname, 'data');
export const ROOT = path.join(import.meta.dirname, '..');

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
export const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Prints rows as a two-column table under a title. */
export function printTable(title: string, rows: [string, string][]): void {
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  process.stdout.write(`\n${title}\n${rows.map(([k, v]) => `  ${k.padEnd(w)}${v}`).join('\n')}\n`);
}

/** Peak RSS of this process in MB (maxRSS is in KiB). */
export const peakRssMB = (): number => process.resourceUsage().maxRSS / 1024;

/**
 * Runs `node <script> ...args` and resolves with the JSON object on its last stdout line; the
 * child's stderr passes through (progress, errors).
 */
export function runJsonChild<T>(script: string, args: string[], env?: NodeJS.ProcessEnv): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${path.basename(script)} ${args[0] ?? ''} exited ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as T);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
