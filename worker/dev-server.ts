// Starts a local Temporal dev server (the `temporal` CLI) with batchpilot's search attributes
// registered, and waits until it accepts connections. Used by `batchpilot dev`, `run` and tests.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../common/definitions.ts';
import { findTemporalCli } from './temporal-cli.ts';

export interface DevServerOptions {
  port?: number;
  uiPort?: number;
  /** Persist state in this SQLite file (survives a restart of the server). */
  dbFilename?: string;
  /** `--dynamic-config-value` entries, e.g. `limit.historyCount.suggestContinueAsNew=200`. */
  dynamicConfig?: string[];
  /** Show the server's output (the `dev` command); quiet otherwise. */
  inheritOutput?: boolean;
  headless?: boolean;
  /** A codec server the Web UI sends encrypted payloads to (`batchpilot codec-server`). */
  uiCodecEndpoint?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Run the server in a process group of its own (so a Ctrl-C at the terminal reaches only us and
   * we can cancel the job while it still runs) under a watchdog that stops it when we die, however
   * we die: the watchdog reads a pipe from us and kills the server when the pipe closes.
   */
  ownGroupDieWithParent?: boolean;
}

// CommonJS run with `node -e`: no file to find after packaging. argv[1] is the JSON command line.
const WATCHDOG = `
const { spawn } = require('node:child_process');
const [cmd, ...args] = JSON.parse(process.argv[1]);
const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), 5000).unref();
};
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
`;

export interface DevServer {
  address: string;
  port: number;
  uiPort: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function searchAttributeArgs(): string[] {
  return Object.values(SEARCH_ATTRIBUTES).flatMap((a) => ['--search-attribute', `${a.name}=${a.type}`]);
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = findTemporalCli(opts.env);
  if (!cli) {
    throw new Error(
      'the Temporal CLI was not found: run "bash scripts/setup.sh" (builds it once) or set TEMPORAL_CLI_PATH',
    );
  }
  const port = opts.port ?? (await freePort());
  const uiPort = opts.uiPort ?? (await freePort());
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--log-level',
    'error',
  ];
  if (opts.headless) args.push('--headless');
  if (opts.dbFilename) args.push('--db-filename', opts.dbFilename);
  if (opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  for (const dc of opts.dynamicConfig ?? []) args.push('--dynamic-config-value', dc);
  args.push(...searchAttributeArgs());
  const child = opts.ownGroupDieWithParent
    ? spawn(process.execPath, ['-e', WATCHDOG, JSON.stringify([cli, ...args])], {
        stdio: ['pipe', opts.inheritOutput ? 'inherit' : 'ignore', opts.inheritOutput ? 'inherit' : 'pipe'],
        detached: true,
      })
    : spawn(cli, args, { stdio: opts.inheritOutput ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const address = `127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(new Error(`temporal dev server exited with code ${code}: ${stderr.trim()}`)),
    ),
  );
  exited.catch(() => undefined);
  await Promise.race([waitForServer(address), exited]);
  return {
    address,
    port,
    uiPort,
    process: child,
    stop: () => stopProcess(child),
  };
}

async function waitForServer(address: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      await c.workflowService.getSystemInfo({});
      await c.close();
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`temporal dev server did not start on ${address}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}
