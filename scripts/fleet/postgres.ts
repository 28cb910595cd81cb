// PostgreSQL for Temporal, as a plain process in a folder of its own. initdb and the server refuse
// to run as root, so as root both run as the `postgres` user, which owns the data, socket and log
// folders. Tuned for a throwaway cluster: no fsync, loopback only, trust on loopback, and enough
// connections for a Temporal server (about 45 with four history shards) plus the schema tool.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startProcess, waitUntil, type FleetProcess } from './processes.ts';

export const POSTGRES_USER = 'temporal';

export interface Postgres {
  host: string;
  port: number;
  user: string;
  process: FleetProcess;
  stop(): Promise<void>;
}

interface Owner {
  uid: number;
  gid: number;
}

function postgresOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error('running as root, PostgreSQL needs the `postgres` user: apt-get install postgresql');
  }
}

function ownedFolder(dir: string, owner: Owner | undefined): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  return dir;
}

export async function startPostgres(opts: { root: string; bin: string; port: number }): Promise<Postgres> {
  const owner = postgresOwner();
  // The postgres user must be able to reach its folders below the fleet's root.
  fs.chmodSync(opts.root, 0o755);
  fs.mkdirSync(path.join(opts.root, 'postgres'), { recursive: true, mode: 0o755 });
  const data = path.join(opts.root, 'postgres', 'data');
  const socket = ownedFolder(path.join(opts.root, 'postgres', 'socket'), owner);
  const logs = ownedFolder(path.join(opts.root, 'postgres', 'logs'), owner);
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    ownedFolder(data, owner);
    const initdb = [
      path.join(opts.bin, 'initdb'),
      '-D',
      data,
      '-U',
      POSTGRES_USER,
      '--auth=trust',
      '-E',
      'UTF8',
    ];
    const [cmd, ...args] = owner ? ['runuser', '-u', 'postgres', '--', ...initdb] : initdb;
    try {
      execFileSync(cmd!, args, { stdio: 'pipe' });
    } catch (err) {
      const e = err as { stderr?: Buffer };
      throw new Error(`initdb failed in ${data}: ${e.stderr?.toString() ?? (err as Error).message}`);
    }
  }
  const proc = startProcess(
    'postgres',
    path.join(opts.bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(opts.port),
      '-k',
      socket,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=300',
    ],
    logs,
    owner ? { uid: owner.uid, gid: owner.gid } : {},
  );
  const ready = () =>
    new Promise<boolean>((resolve) =>
      execFile(path.join(opts.bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(opts.port)], (err) =>
        resolve(!err),
      ),
    );
  await waitUntil(`PostgreSQL on 127.0.0.1:${opts.port}`, ready, proc);
  return {
    host: '127.0.0.1',
    port: opts.port,
    user: POSTGRES_USER,
    process: proc,
    // SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for the server's connections to end.
    stop: () => proc.stop('SIGINT'),
  };
}
