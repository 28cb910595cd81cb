// The CLI as a person runs it from a terminal: its own process group (a Ctrl-C reaches the whole
// group), output read as it comes, signals sent to the group.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(import.meta.dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'batchpilot.ts');

/** Variables of the test's own environment that would point the CLI elsewhere. */
const OUTSIDE = [
  'TEMPORAL_ADDRESS',
  'BATCHPILOT_DATA_DIR',
  'BATCHPILOT_PROVIDER',
  'BATCHPILOT_BASE_URL',
  'BATCHPILOT_API_KEY',
  'DASHSCOPE_API_KEY',
  'OPENAI_API_KEY',
];

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stderr or stdout matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal to the process group, as a terminal's Ctrl-C does. */
  signalGroup(signal: NodeJS.Signals): void;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function cliEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of OUTSIDE) delete env[k];
  return { ...env, ...extra };
}

export function startCli(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters])
      if (w.pattern.test(out) || w.pattern.test(err)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  };
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    check();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit,
    signalGroup(signal) {
      process.kill(-child.pid!, signal);
    },
    waitFor(pattern, timeoutMs = 120_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${pattern}\nstdout:\n${out}\nstderr:\n${err}`)),
          timeoutMs,
        );
        waiters.push({
          pattern,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        check();
        void exit.then(() =>
          setTimeout(() => {
            clearTimeout(timer);
            reject(new Error(`exited before ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
          }, 50),
        );
      });
    },
  };
}

/** Whether any process's command line mentions `needle` (e.g. a server's database path). */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) pids.push(Number(e));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}
