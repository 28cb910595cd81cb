// The running system for the orchestration, polling and faults benchmarks: a Temporal dev server
// (worker/dev-server.ts), the Batch API emulator (emulator/index.ts) and the real worker
// (worker/worker.ts), each in its own process so each one's peak RSS is its own; the client lives
// in the benchmark's process. Also reads a workflow's history across its continue-as-new chain and
// turns it into event and Temporal Cloud action counts.
//
// Child modes (spawned by startStack, not run by hand):
//   node bench/stack.ts emulator '<json>'   prints {"url"} when serving, {"rssMB"} on SIGTERM
//   node bench/stack.ts worker '<json>'     prints {"ready":true} when polling, {"rssMB"} on SIGTERM
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Client } from '@temporalio/client';
import { JOB_WORKFLOW } from '../common/definitions.ts';
import { JOB_DEFAULTS, type JobInput, type JobOptions, type JobSummary } from '../common/job-types.ts';
import { PROFILES } from '../common/profiles.ts';
import type { RateLimits } from '../common/rate-limits.ts';
import type { EmulatorStats, FaultSettings } from '../emulator/index.ts';
import type { DevServer } from '../worker/dev-server.ts';
import { startLocalStack } from '../worker/local-stack.ts';
import { peakRssMB } from './util.ts';

interface EmulatorChildOptions {
  dataDir: string;
  faults: FaultSettings;
}

interface WorkerChildOptions {
  address: string;
  bundlePath: string;
  taskQueue: string;
  dataDir: string;
  baseUrl: string;
  maxConcurrentActivities?: number;
  /** The limits the worker paces by; the emulator profile's (DashScope's published) when absent. */
  rateLimits?: RateLimits | 'off';
}

// ---------------------------------------------------------------------------------------------
// Child processes.

/** Children still running: killed if this process exits without stopping them (a failed run). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Spawns `node bench/stack.ts <mode> <json>` and waits for its first stdout line. */
async function spawnChild<T>(mode: string, options: object): Promise<{ child: ChildProcess; ready: T }> {
  // BENCH_PROFILE=<dir>: CPU profiles of the emulator and the worker (written when they stop).
  const prof =
    process.env.BENCH_PROFILE && mode !== 'bundle'
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${process.env.BENCH_PROFILE}`,
          `--cpu-prof-name=${mode}-${Date.now()}.cpuprofile`,
        ]
      : [];
  const child = spawn(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', ...prof, import.meta.filename, mode, JSON.stringify(options)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  live.add(child);
  child.once('exit', () => live.delete(child));
  const lines = readline.createInterface({ input: child.stdout });
  const it = lines[Symbol.asyncIterator]();
  const first = await Promise.race([
    it.next(),
    new Promise<never>((_, reject) => child.once('exit', (c) => reject(new Error(`${mode} exited ${c}`)))),
  ]);
  if (first.done) throw new Error(`${mode} ended before it was ready`);
  (child as ChildProcess & { lines?: AsyncIterator<string> }).lines = it;
  return { child, ready: JSON.parse(first.value) as T };
}

export type RssSamples = [number, number][];

/** CPU time (user + system) this process used so far, ms. */
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** CPU time (user + system) of another process from /proc, ms (Linux; NaN elsewhere). */
export function procCpuMs(pid: number | undefined): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** SIGTERMs a child started by spawnChild and returns the peak RSS (and samples) it reports. */
async function stopChild(
  child: ChildProcess,
): Promise<{ rssMB: number; cpuMs: number; samples: RssSamples }> {
  const it = (child as ChildProcess & { lines?: AsyncIterator<string> }).lines!;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let rssMB = NaN;
  let cpu = NaN;
  let samples: RssSamples = [];
  for (;;) {
    const next = await it.next();
    if (next.done) break;
    const v = JSON.parse(next.value) as { rssMB?: number; cpuMs?: number; samples?: RssSamples };
    if (v.rssMB !== undefined) rssMB = v.rssMB;
    if (v.cpuMs !== undefined) cpu = v.cpuMs;
    if (v.samples) samples = v.samples;
  }
  await exited;
  return { rssMB, cpuMs: cpu, samples };
}

async function emulatorChild(o: EmulatorChildOptions): Promise<void> {
  const { startEmulator } = await import('../emulator/index.ts');
  const em = await startEmulator({ port: 0, dataDir: o.dataDir, faults: o.faults });
  process.stdout.write(`${JSON.stringify({ url: em.url })}\n`);
  process.once('SIGTERM', () => {
    void em.close().then(() => {
      process.stdout.write(`${JSON.stringify({ rssMB: peakRssMB(), cpuMs: cpuMs() })}\n`);
      process.exit(0);
    });
  });
}

/** Bundles the workflow code once, outside the worker, so the worker's peak RSS is the job's. */
async function bundleChild(o: { bundlePath: string; workflowsPath?: string }): Promise<void> {
  const { bundleWorkflows } = await import('../worker/workflow-bundle.ts');
  const bundle = await bundleWorkflows(o.workflowsPath ? { workflowsPath: o.workflowsPath } : {});
  fs.writeFileSync(o.bundlePath, bundle.code);
  process.stdout.write(`${JSON.stringify({ done: true })}\n`);
}

async function workerChild(o: WorkerChildOptions): Promise<void> {
  const { NativeConnection } = await import('@temporalio/worker');
  const { pino } = await import('pino');
  const { installRuntime } = await import('../worker/runtime.ts');
  const { runWorker } = await import('../worker/local-stack.ts');
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'error' }, pino.destination(2));
  installRuntime(logger);
  const worker = await runWorker(
    {
      namespace: 'default',
      taskQueue: o.taskQueue,
      dataDir: o.dataDir,
      profile:
        o.rateLimits === undefined
          ? PROFILES.emulator
          : { ...PROFILES.emulator, rateLimits: o.rateLimits === 'off' ? undefined : o.rateLimits },
      baseUrl: o.baseUrl,
      apiKey: undefined,
      logger,
      workflowBundle: { codePath: o.bundlePath },
      ...(o.maxConcurrentActivities ? { maxConcurrentActivities: o.maxConcurrentActivities } : {}),
    },
    () => NativeConnection.connect({ address: o.address }),
  );
  // RSS samples, to place the peak in the job's phases (epoch ms, MB).
  const samples: [number, number][] = [];
  const sampler = setInterval(() => samples.push([Date.now(), process.memoryUsage().rss / 1048576]), 500);
  const stopped = new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  process.stdout.write(`${JSON.stringify({ readyRssMB: process.memoryUsage().rss / 1048576 })}\n`);
  await Promise.race([stopped, worker.running]);
  await worker.stop();
  clearInterval(sampler);
  process.stdout.write(`${JSON.stringify({ rssMB: peakRssMB(), cpuMs: cpuMs(), samples })}\n`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The stack.

export interface Stopped {
  workerMB: number;
  emulatorMB: number;
  workerSamples: RssSamples;
  workerCpuMs: number;
  emulatorCpuMs: number;
  /** The Temporal dev server's CPU time since it started. */
  serverCpuMs: number;
}

export interface Stack {
  client: Client;
  server: DevServer;
  emulatorUrl: string;
  dataDir: string;
  taskQueue: string;
  stats(): Promise<EmulatorStats>;
  setFaults(f: FaultSettings): Promise<void>;
  /** Runs a job to its end; returns its summary and wall time. */
  runJob(jobId: string, input: string, outDir: string, options: Partial<JobOptions>): Promise<JobSummary>;
  /** Worker RSS once it polls (bundle loaded, no work yet), MB. */
  workerReadyMB: number;
  /** Stops worker and emulator; returns their peak RSS (MB), CPU time (ms), the worker's RSS samples. */
  stopChildren(): Promise<Stopped>;
  close(): Promise<void>;
}

export function jobOptions(over: Partial<JobOptions> = {}): JobOptions {
  return {
    ...JOB_DEFAULTS,
    completionWindow: '24h',
    limits: { ...PROFILES.emulator.limits },
    ...over,
  };
}

export async function startStack(opts: {
  dataDir: string;
  faults: FaultSettings;
  dynamicConfig?: string[];
  maxConcurrentActivities?: number;
  rateLimits?: RateLimits | 'off';
  /** Task queue of the worker; `bench-<pid>` when absent. */
  taskQueue?: string;
  /** Workflow code to bundle (another checkout's `workflows/index.ts`); this tree's when absent. */
  workflowsPath?: string;
}): Promise<Stack> {
  // Server and client here; emulator and worker in children of their own, from the same parts.
  const local = await startLocalStack({
    devServer: { headless: true, ...(opts.dynamicConfig ? { dynamicConfig: opts.dynamicConfig } : {}) },
  });
  const server = local.server!;
  const { client } = local;
  const emulatorDir = path.join(opts.dataDir, 'emulator-state');
  const bundlePath = path.join(opts.dataDir, 'workflow-bundle.js');
  const taskQueue = opts.taskQueue ?? `bench-${process.pid}`;
  let em: { child: ChildProcess; ready: { url: string } } | undefined;
  let worker: { child: ChildProcess; ready: { readyRssMB: number } };
  try {
    fs.rmSync(emulatorDir, { recursive: true, force: true });
    em = await spawnChild<{ url: string }>('emulator', { dataDir: emulatorDir, faults: opts.faults });
    const bundler = await spawnChild<{ done: boolean }>('bundle', {
      bundlePath,
      ...(opts.workflowsPath ? { workflowsPath: opts.workflowsPath } : {}),
    });
    if (bundler.child.exitCode === null) await new Promise((resolve) => bundler.child.once('exit', resolve));
    worker = await spawnChild<{ readyRssMB: number }>('worker', {
      address: server.address,
      bundlePath,
      taskQueue,
      dataDir: opts.dataDir,
      baseUrl: em.ready.url,
      ...(opts.maxConcurrentActivities ? { maxConcurrentActivities: opts.maxConcurrentActivities } : {}),
      ...(opts.rateLimits ? { rateLimits: opts.rateLimits } : {}),
    } satisfies WorkerChildOptions);
  } catch (err) {
    if (em) await stopChild(em.child);
    await local.close();
    throw err;
  }
  const emu = em;
  const admin = em.ready.url.replace(/\/v1$/, '/_emulator');
  let stopped: Stopped | undefined;
  const stopChildren = async () => {
    if (!stopped) {
      const w = await stopChild(worker.child);
      const e = await stopChild(emu.child);
      stopped = {
        workerMB: w.rssMB,
        emulatorMB: e.rssMB,
        workerSamples: w.samples,
        workerCpuMs: w.cpuMs,
        emulatorCpuMs: e.cpuMs,
        serverCpuMs: procCpuMs(server.process.pid),
      };
    }
    return stopped;
  };
  return {
    client,
    server,
    emulatorUrl: emu.ready.url,
    dataDir: opts.dataDir,
    taskQueue,
    workerReadyMB: worker.ready.readyRssMB,
    async stats() {
      return (await (await fetch(`${admin}/stats`)).json()) as EmulatorStats;
    },
    async setFaults(f) {
      const res = await fetch(`${admin}/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(f),
      });
      if (!res.ok) throw new Error(`POST /_emulator/faults: ${res.status} ${await res.text()}`);
    },
    async runJob(jobId, input, outDir, options) {
      const args: JobInput = { input, outDir, options: jobOptions(options), searchAttributes: true };
      return (await client.workflow.execute(JOB_WORKFLOW, {
        taskQueue,
        workflowId: jobId,
        args: [args],
      })) as JobSummary;
    },
    stopChildren,
    async close() {
      await stopChildren();
      await local.close();
      fs.rmSync(emulatorDir, { recursive: true, force: true });
      fs.rmSync(bundlePath, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Histories.

export interface RunCounts {
  events: number;
  /** Events by type, e.g. timerStarted: 960. */
  byType: Record<string, number>;
  /** Activity attempts past the first (each is a billed action). */
  activityRetries: number;
}

/** Every run of a workflow id, oldest first, walking back through continue-as-new. */
export async function historyRuns(client: Client, workflowId: string): Promise<RunCounts[]> {
  const runs: RunCounts[] = [];
  let runId: string | undefined;
  for (;;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const byType: Record<string, number> = {};
    let activityRetries = 0;
    for (const ev of history.events ?? []) {
      const key = Object.keys(ev).find(
        (k) => k.endsWith('EventAttributes') && (ev as Record<string, unknown>)[k] != null,
      );
      const type = key ? key.replace(/EventAttributes$/, '') : `type-${String(ev.eventType)}`;
      byType[type] = (byType[type] ?? 0) + 1;
      const attempt = ev.activityTaskStartedEventAttributes?.attempt;
      if (attempt && attempt > 1) activityRetries++;
    }
    runs.unshift({ events: history.events?.length ?? 0, byType, activityRetries });
    const prev = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!prev) break;
    runId = prev;
  }
  return runs;
}

/**
 * Billable Temporal Cloud actions visible in one workflow's history (docs.temporal.io/cloud/actions):
 * its starts (the first run, started by a client or as a child, and each continue-as-new), activity
 * starts and retries, timers, signals it sends, search attribute upserts. Counted on the sending
 * side only, so job + shards adds up without counting a child start or a signal twice. Heartbeats
 * and queries are not in history (polls are short activities; the bench sends no queries).
 */
export function actionsOf(runs: RunCounts[]): number {
  let n = 0;
  for (const r of runs) {
    const t = r.byType;
    n +=
      1 +
      (t.activityTaskScheduled ?? 0) +
      r.activityRetries +
      (t.timerStarted ?? 0) +
      (t.signalExternalWorkflowExecutionInitiated ?? 0) +
      (t.upsertWorkflowSearchAttributes ?? 0);
  }
  return n;
}

/** Activity durations (scheduled → completed) by activity type, in ms, from one run's history. */
export async function activitySpans(
  client: Client,
  workflowId: string,
): Promise<{ type: string; start: number; end: number }[]> {
  const spans: { type: string; start: number; end: number }[] = [];
  let runId: string | undefined;
  for (;;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const scheduled = new Map<string, { type: string; start: number }>();
    const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
      Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
    for (const ev of history.events ?? []) {
      const s = ev.activityTaskScheduledEventAttributes;
      if (s)
        scheduled.set(String(ev.eventId), { type: s.activityType?.name ?? '?', start: ms(ev.eventTime) });
      const c = ev.activityTaskCompletedEventAttributes;
      if (c) {
        const from = scheduled.get(String(c.scheduledEventId));
        if (from) spans.push({ ...from, end: ms(ev.eventTime) });
      }
    }
    const prev = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!prev) break;
    runId = prev;
  }
  return spans;
}

/** Mean time between consecutive events of each type transition in the latest run (diagnosis). */
export async function eventGaps(client: Client, workflowId: string): Promise<Record<string, number>> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  const gaps: Record<string, number[]> = {};
  let prev: { type: string; t: number } | undefined;
  for (const ev of history.events ?? []) {
    const key = Object.keys(ev).find(
      (k) => k.endsWith('EventAttributes') && (ev as Record<string, unknown>)[k] != null,
    );
    const type = (key ?? '?').replace(/EventAttributes$/, '');
    const t = ms(ev.eventTime);
    if (prev) (gaps[`${prev.type} -> ${type}`] ??= []).push(t - prev.t);
    prev = { type, t };
  }
  return Object.fromEntries(
    Object.entries(gaps).map(([k, v]) => [k, Math.round(v.reduce((a, b) => a + b, 0) / v.length)]),
  );
}

// ---------------------------------------------------------------------------------------------

if (process.argv[1] === import.meta.filename) {
  const [mode, json] = process.argv.slice(2);
  const o = JSON.parse(json ?? '{}') as object;
  if (mode === 'emulator') await emulatorChild(o as EmulatorChildOptions);
  else if (mode === 'worker') await workerChild(o as WorkerChildOptions);
  else if (mode === 'bundle') await bundleChild(o as { bundlePath: string; workflowsPath?: string });
  else throw new Error(`unknown mode ${mode}`);
}
