// The reliability rig: like test/support/harness.ts, but every piece can be taken away and brought
// back. The emulator sits on a fixed port with its state in a fixed folder (so it can be closed and
// restarted in place), workers are separate `batchpilot worker` processes (so they can be
// SIGKILLed), the Temporal server may be the shared one or the scenario's own, and an optional
// proxy between workers and emulator slows answers down. Nothing is mocked.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { pino } from 'pino';
import { inject } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import type { JobOptions, JobSummary } from '../../common/job-types.ts';
import { rng } from '../../bench/gen-chat.ts';
import { PROFILES } from '../../common/profiles.ts';
import { startEmulator, type FaultSettings, type RunningEmulator } from '../../emulator/index.ts';
import { freePort } from '../../worker/dev-server.ts';
import { installRuntime } from '../../worker/runtime.ts';
import { runWorker, startLocalStack, type RunningWorker } from '../../worker/local-stack.ts';
import type { WorkerOptions } from '../../worker/worker.ts';
import { jobOptions, pollsIn, type EmulatorStats } from '../support/harness.ts';
import { spawnWorkerProcess } from '../support/worker-process.ts';

/** An integer from the environment (soak sizes, outage lengths), or the default. */
export function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return Math.floor(n);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 300_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // The thing looked at may be away (that is the point of these tests): look again.
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function log(scenario: string, msg: string): void {
  console.log(`[${scenario}] ${new Date().toISOString().slice(11, 23)} ${msg}`);
}

// ---------------------------------------------------------------------------------------------
// Inputs

export interface InputSpec {
  lines: number;
  models?: string[];
  /** Lines refused by the planner, interleaved (one every `badEvery` lines). */
  badEvery?: number;
  /** Extra lines on batch-test-model: every one fails at the provider, so its batch has no output. */
  testModelLines?: number;
}

/** Writes a chat JSONL input under the data root; returns its relative name and line count. */
export function writeInput(dataDir: string, name: string, spec: InputSpec): { input: string; total: number } {
  const models = spec.models ?? ['qwen-plus'];
  const rows: string[] = [];
  const bad = [
    (i: number) => `{"custom_id":"bad-${i}","method":"POST","url":"/v1/chat/completions","body":{"model":`,
    (i: number) =>
      JSON.stringify({
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', messages: [{ role: 'user', content: `orphan ${i}` }] },
      }),
    (i: number) =>
      JSON.stringify({
        custom_id: `stream-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', stream: true, messages: [{ role: 'user', content: `s ${i}` }] },
      }),
  ];
  let b = 0;
  for (let i = 0; i < spec.lines; i++) {
    if (spec.badEvery && i % spec.badEvery === spec.badEvery - 1) rows.push(bad[b++ % bad.length]!(i));
    rows.push(
      JSON.stringify({
        custom_id: `req-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: models[i % models.length], messages: [{ role: 'user', content: `question ${i}` }] },
      }),
    );
  }
  for (let i = 0; i < (spec.testModelLines ?? 0); i++) {
    rows.push(
      JSON.stringify({
        custom_id: `test-model-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'batch-test-model', messages: [{ role: 'user', content: `t ${i}` }] },
      }),
    );
  }
  fs.writeFileSync(path.join(dataDir, name), rows.join('\n') + '\n');
  return { input: name, total: rows.length };
}

// ---------------------------------------------------------------------------------------------
// A proxy that slows the provider down

export interface SlowProxyOptions {
  seed: number;
  /** Every answer is held a random time in [minDelayMs, maxDelayMs]. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Holds the answer to the n-th `POST /v1/batches` (1-based) this long, past the activity's timeout. */
  holdCreate?: { nth: number; ms: number };
}

export interface SlowProxy {
  url: string;
  counts: {
    requests: number;
    throttled: number;
    throttledWithRetryAfter: number;
    /** Held create answers; `heldAbandoned`: the caller had given up before the answer came. */
    held: number;
    heldAbandoned: number;
  };
  close(): Promise<void>;
}

async function startSlowProxy(target: () => string, opts: SlowProxyOptions): Promise<SlowProxy> {
  const rnd = rng(opts.seed);
  const counts = { requests: 0, throttled: 0, throttledWithRetryAfter: 0, held: 0, heldAbandoned: 0 };
  let creates = 0;
  const server = http.createServer((req, res) => {
    counts.requests++;
    const isCreate = req.method === 'POST' && req.url === '/v1/batches';
    const hold = isCreate && ++creates === opts.holdCreate?.nth ? opts.holdCreate.ms : 0;
    const delay = opts.minDelayMs + Math.floor(rnd() * (opts.maxDelayMs - opts.minDelayMs + 1));
    const base = new URL(target());
    const upstream = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        if (up.statusCode === 429) {
          counts.throttled++;
          if (up.headers['retry-after'] !== undefined) counts.throttledWithRetryAfter++;
        }
        // The provider did the work; its answer arrives late (or, held, after the caller gave up).
        setTimeout(() => {
          if (hold) counts.held++;
          if (res.destroyed) {
            if (hold) counts.heldAbandoned++;
            up.resume();
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        }, delay + hold);
      },
    );
    upstream.on('error', () => res.destroy());
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    counts,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export { makeUnwritable, type Unwritable } from '../support/unwritable.ts';

// ---------------------------------------------------------------------------------------------
// Worker processes

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** The last few kB the process printed. */
  output(): string;
  kill(): Promise<void>;
}

function watchProcess(name: string, child: ChildProcess): WorkerProcess {
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let killed = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      // A worker that dies on its own is news: say so with its last words.
      if (!killed)
        log('rig', `${name} exited by itself (code ${code}, signal ${signal}):\n${out.slice(-3000)}`);
      resolve({ code, signal });
    }),
  );
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    name,
    child,
    exited,
    alive,
    output: () => out,
    kill: async () => {
      if (!alive()) return;
      killed = true;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The rig

export interface RigOptions {
  faults: FaultSettings;
  /** Default: the shared dev server of the global setup. */
  temporalAddress?: string;
  /** Put a slowing proxy between the workers and the emulator. */
  proxy?: SlowProxyOptions;
  /** Task queue name prefix. */
  name: string;
}

export interface Rig {
  name: string;
  dataDir: string;
  /** The Temporal server this rig's client and workers use. */
  temporalAddress: string;
  taskQueue: string;
  client: Client;
  /** The emulator's address; the same across restarts. */
  emulatorUrl: string;
  /** What workers call: the proxy when there is one, else the emulator. */
  providerUrl: string;
  proxy: SlowProxy | undefined;
  emulatorUp(): boolean;
  stopEmulator(): Promise<void>;
  startEmulator(): Promise<void>;
  setFaults(f: FaultSettings): Promise<void>;
  stats(): Promise<EmulatorStats>;
  spawnWorker(name: string, extraEnv?: Record<string, string>): WorkerProcess;
  startInProcessWorker(): Promise<void>;
  stopInProcessWorker(): Promise<void>;
  startJob(input: string, out: string, options: JobOptions, id?: string): Promise<WorkflowHandle>;
  close(): Promise<void>;
}

let rigs = 0;

export async function startRig(opts: RigOptions): Promise<Rig> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `batchpilot-rel-${opts.name}-`));
  const emulatorState = path.join(dataDir, 'emulator-state');
  const port = await freePort();
  let emulator: RunningEmulator | undefined;
  const bootEmulator = async () => {
    emulator = await startEmulator({ port, dataDir: emulatorState, faults: opts.faults });
  };
  await bootEmulator();
  const emulatorUrl = emulator!.url;
  const proxy = opts.proxy ? await startSlowProxy(() => emulatorUrl, opts.proxy) : undefined;
  const providerUrl = proxy?.url ?? emulatorUrl;
  const address = opts.temporalAddress ?? inject('temporalAddress');
  const bundlePath = inject('workflowBundlePath');
  const taskQueue = `rel-${opts.name}-${process.pid}-${++rigs}-${Date.now()}`;
  // The emulator stays out of the stack: the rig stops and restarts it in place on its own port.
  const stack = await startLocalStack({ temporalAddress: address });
  const { client } = stack;
  const processes: WorkerProcess[] = [];
  let inProcess: RunningWorker | undefined;
  const admin = (p: string) => emulatorUrl.replace(/\/v1$/, p);

  const rig: Rig = {
    name: opts.name,
    dataDir,
    temporalAddress: address,
    taskQueue,
    client,
    emulatorUrl,
    providerUrl,
    proxy,
    emulatorUp: () => emulator !== undefined,
    async stopEmulator() {
      const e = emulator;
      emulator = undefined;
      await e?.close();
    },
    async startEmulator() {
      if (!emulator) await bootEmulator();
    },
    async setFaults(f) {
      const res = await fetch(admin('/_emulator/faults'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(f),
      });
      if (!res.ok) throw new Error(`setting faults: ${res.status} ${await res.text()}`);
    },
    async stats() {
      const res = await fetch(admin('/_emulator/stats'));
      return (await res.json()) as EmulatorStats;
    },
    spawnWorker(name, extraEnv = {}) {
      const child = spawnWorkerProcess({
        temporalAddress: address,
        taskQueue,
        baseUrl: providerUrl,
        dataDir,
        workflowBundle: bundlePath,
        extraEnv,
      });
      const w = watchProcess(name, child);
      processes.push(w);
      return w;
    },
    async startInProcessWorker() {
      const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
      installRuntime(logger);
      const options: Omit<WorkerOptions, 'connection'> = {
        namespace: 'default',
        taskQueue,
        dataDir,
        profile: PROFILES.emulator,
        baseUrl: providerUrl,
        apiKey: undefined,
        logger,
        workflowBundle: { codePath: bundlePath },
      };
      inProcess = await runWorker(options, () => NativeConnection.connect({ address }));
    },
    async stopInProcessWorker() {
      const w = inProcess;
      inProcess = undefined;
      await w?.stop().catch(() => undefined);
    },
    async startJob(input, out, options, id = `${opts.name}-${Date.now()}-${rigs}`) {
      return client.workflow.start(JOB_WORKFLOW, {
        taskQueue,
        workflowId: id,
        args: [{ input, outDir: out, options }],
      });
    },
    async close() {
      for (const p of processes) await p.kill();
      await rig.stopInProcessWorker();
      await stack.close();
      await proxy?.close();
      await rig.stopEmulator();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return rig;
}

/**
 * Waits for a job's result through server restarts: transport errors (the server away) are
 * retried; the workflow's own outcome (success or failure) is returned or thrown.
 */
export async function jobResult(handle: WorkflowHandle, timeoutMs = 600_000): Promise<JobSummary> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await handle.result()) as JobSummary;
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw err;
      if (Date.now() > deadline) throw err;
      await sleep(1000);
    }
  }
}

export { jobOptions, pollsIn };
