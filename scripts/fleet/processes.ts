// Child processes of the fleet: each writes its output to a log file under the fleet's folder (for
// a person reading what went wrong), is known by name, and is killed when the fleet stops or when
// the Node process that started it exits, whatever the reason.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface FleetProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  alive(): boolean;
  /** The last few kB of its log. */
  tail(bytes?: number): string;
  /** Resolves with how it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal`, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const running = new Set<FleetProcess>();
let hooked = false;

// A test that fails or a person's Ctrl-C must not leave a PostgreSQL or a Temporal server behind.
// A signal kills them too, unless the program handles that signal itself (the fleet CLI stops the
// fleet in order); then the signal is re-raised so the process still ends as it would have.
function killAll(): void {
  for (const p of running) if (p.alive()) p.child.kill('SIGKILL');
}

function killAllOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      if (process.listenerCount(sig) > 1) return;
      killAll();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  logDir: string,
  options: Omit<SpawnOptions, 'stdio'> = {},
): FleetProcess {
  killAllOnExit();
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(command, args, { ...options, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  const alive = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
  const p: FleetProcess = {
    name,
    child,
    logFile,
    alive,
    exited,
    tail: (bytes = 4000) => readTail(logFile, bytes),
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (alive()) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      running.delete(p);
    },
  };
  running.add(p);
  void exited.then(() => running.delete(p));
  return p;
}

export function readTail(file: string, bytes: number): string {
  try {
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(Math.min(bytes, size));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    fs.closeSync(fd);
    return buf.toString('utf8');
  } catch {
    return '';
  }
}

/** Polls `check` until it returns true, failing early (with its log) when `proc` dies. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  proc: FleetProcess | undefined,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (proc && !proc.alive())
      throw new Error(
        `${proc.name} exited while waiting for ${what}; its log (${proc.logFile}):\n${proc.tail()}`,
      );
    try {
      if (await check()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const log = proc ? `\n${proc.name}'s log (${proc.logFile}):\n${proc.tail()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last})` : ''}${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
