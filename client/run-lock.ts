// One `batchpilot run` per output folder at a time: `<out>/.batchpilot/run/lock` holds the pid of
// the run and of the embedded Temporal server it started. A lock whose run is gone (SIGKILL, crash)
// is taken over, and a server it left behind is stopped: nothing `run` starts outlives it for long.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from './command.ts';

interface LockContent {
  pid: number;
  startedAt: string;
  serverPid?: number;
}

/** Whether `pid` is a live process whose command line mentions `word`. */
function aliveAs(pid: number, word: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(word);
  } catch {
    return true; // no /proc: trust the signal check
  }
}

export interface RunLock {
  /** Records the embedded server's process (group leader), so a later run can stop it if we die. */
  setServerPid(pid: number): void;
  release(): void;
}

/** `file` is the folder's lock (storage/layout.ts runLockFile). */
export function acquireRunLock(file: string, outLabel: string): RunLock {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let content: LockContent = { pid: process.pid, startedAt: new Date().toISOString() };
  for (let tries = 0; ; tries++) {
    try {
      fs.writeFileSync(file, JSON.stringify(content), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 2) throw err;
    }
    let held: Partial<LockContent> = {};
    try {
      held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockContent;
    } catch {
      // Torn or empty: its writer died while writing it.
    }
    if (typeof held.pid === 'number' && held.pid !== process.pid && aliveAs(held.pid, 'batchpilot')) {
      throw new UsageError(
        `another batchpilot run (pid ${held.pid}, since ${held.startedAt}) is working on ${outLabel}: wait for it or stop it first (Ctrl-C)`,
      );
    }
    if (typeof held.serverPid === 'number' && aliveAs(held.serverPid, 'temporal')) {
      try {
        process.kill(-held.serverPid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    fs.rmSync(file, { force: true });
  }
  const release = () => {
    try {
      const now = JSON.parse(fs.readFileSync(file, 'utf8')) as LockContent;
      if (now.pid === process.pid) fs.rmSync(file, { force: true });
    } catch {
      // Gone already.
    }
  };
  process.once('exit', release);
  return {
    setServerPid(pid) {
      content = { ...content, serverPid: pid };
      fs.writeFileSync(file, JSON.stringify(content));
    },
    release() {
      release();
      process.removeListener('exit', release);
    },
  };
}
