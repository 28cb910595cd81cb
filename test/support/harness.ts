// An integration harness: the shared Temporal dev server, a fresh emulator over HTTP with the
// test's faults, and an in-process worker on a task queue of its own. Nothing is mocked.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import { pino } from 'pino';
import type { EmulatorStats, FaultSettings, RunningEmulator } from '../../emulator/index.ts';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import { JOB_DEFAULTS, type JobInput, type JobOptions, type JobSummary } from '../../common/job-types.ts';
import { PROFILES } from '../../common/profiles.ts';
import { ANSWERS_DIR_NAME } from '../../storage/answers.ts';
import type { RateLimits } from '../../common/rate-limits.ts';
import { installRuntime } from '../../worker/runtime.ts';
import { runWorker, startLocalStack, type RunningWorker } from '../../worker/local-stack.ts';
import type { WorkerOptions } from '../../worker/worker.ts';
import { spawnWorkerProcess } from './worker-process.ts';

export interface Harness {
  client: Client;
  emulator: RunningEmulator;
  dataDir: string;
  taskQueue: string;
  /** Starts a job and waits for its summary. */
  runJob(input: string, out: string, options?: Partial<JobOptions>, id?: string): Promise<JobSummary>;
  /** Starts the in-process worker, against `baseUrl` instead of the emulator when given. */
  startWorker(baseUrl?: string): Promise<void>;
  /** Runs `batchpilot worker` as a separate process (to SIGKILL it). */
  spawnWorker(extraEnv?: Record<string, string>): ChildProcess;
  stopWorker(): Promise<void>;
  stats(): Promise<EmulatorStats>;
  close(): Promise<void>;
}

export type { EmulatorStats };

export const FAST_FAULTS: FaultSettings = { seed: 1, validatingMs: 50, perLineMs: 0, finalizingMs: 50 };

export function jobOptions(over: Partial<JobOptions> = {}): JobOptions {
  return {
    ...JOB_DEFAULTS,
    completionWindow: '24h',
    limits: { ...PROFILES.emulator.limits },
    pollIntervalMs: 200,
    ...over,
  };
}

let counter = 0;

export interface HarnessOptions {
  faults?: FaultSettings;
  profile?: 'dashscope' | 'openai';
  /** Start an in-process worker (default); false when the test spawns worker processes. */
  inProcessWorker?: boolean;
  /** Key the emulator requires and the workers send. */
  apiKey?: string;
  /** BATCHPILOT_MAX_IN_FLIGHT of the in-process worker. */
  maxInFlight?: number;
  /** BATCHPILOT_CODEC_KEY of the in-process worker. */
  codecKey?: string;
  /** The provider URL the in-process worker uses instead of the emulator's (a stand-in server). */
  baseUrl?: string;
  /** BATCHPILOT_UNREACHABLE_AFTER of the in-process worker, in ms. */
  unreachableAfterMs?: number;
  /** The in-process worker keeps an answer store (`<data root>/.batchpilot-answers`) and reuses from it. */
  answers?: boolean;
  /** Limits the in-process worker paces the fleet by (common/rate-limits.ts); none when absent. */
  rateLimits?: RateLimits;
  /** A Temporal server and workflow bundle of the test's own (tiers without the shared dev server). */
  temporalAddress?: string;
  workflowBundlePath?: string;
  /** BATCHPILOT_STORAGE and BATCHPILOT_SCRATCH_DIR of the in-process worker. */
  storage?: string;
  scratchDir?: string;
  /** The in-process worker's merge budget (bytes): small to make a merge on objects take passes. */
  mergeShardBudgetBytes?: number;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-it-'));
  const address = opts.temporalAddress ?? inject('temporalAddress');
  const bundlePath = opts.workflowBundlePath ?? inject('workflowBundlePath');
  const stack = await startLocalStack({
    temporalAddress: address,
    emulator: {
      port: 0,
      dataDir: path.join(dataDir, 'emulator-state'),
      faults: opts.faults ?? FAST_FAULTS,
      ...(opts.profile ? { profile: opts.profile } : {}),
      ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    },
  });
  const { client } = stack;
  const emulator = stack.emulator!;
  const bundle = { code: fs.readFileSync(bundlePath, 'utf8') };
  const taskQueue = `it-${process.pid}-${++counter}-${Date.now()}`;
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  installRuntime(logger);
  let worker: RunningWorker | undefined;

  const h: Harness = {
    client,
    emulator,
    dataDir,
    taskQueue,
    async startWorker(baseUrl) {
      const options: Omit<WorkerOptions, 'connection'> = {
        namespace: 'default',
        taskQueue,
        dataDir,
        profile: {
          ...(opts.profile === 'openai' ? { ...PROFILES.openai, listFilters: false } : PROFILES.emulator),
          rateLimits: opts.rateLimits,
        },
        baseUrl: baseUrl ?? opts.baseUrl ?? emulator.url,
        apiKey: opts.apiKey,
        logger,
        ...(opts.maxInFlight ? { maxInFlight: opts.maxInFlight } : {}),
        ...(opts.unreachableAfterMs ? { unreachableAfterMs: opts.unreachableAfterMs } : {}),
        ...(opts.codecKey ? { codecKey: opts.codecKey } : {}),
        ...(opts.storage ? { storage: opts.storage } : {}),
        ...(opts.scratchDir ? { scratchDir: opts.scratchDir } : {}),
        ...(opts.mergeShardBudgetBytes ? { mergeShardBudgetBytes: opts.mergeShardBudgetBytes } : {}),
        ...(opts.answers ? { answers: { dir: path.join(dataDir, ANSWERS_DIR_NAME), maxBytes: 1e9 } } : {}),
        workflowBundle: bundle,
      };
      worker = await runWorker(options, () => NativeConnection.connect({ address }));
    },
    spawnWorker(extraEnv = {}) {
      const child = spawnWorkerProcess({
        temporalAddress: address,
        taskQueue,
        baseUrl: emulator.url,
        dataDir,
        workflowBundle: bundlePath,
        ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
        extraEnv,
      });
      // Drain the pipes so a chatty worker never blocks on a full one.
      child.stdout.resume();
      child.stderr.resume();
      return child;
    },
    async stopWorker() {
      const w = worker;
      worker = undefined;
      await w?.stop();
    },
    async runJob(
      input,
      out,
      options = {},
      id = `job-${taskQueue}-${Math.random().toString(36).slice(2, 8)}`,
    ) {
      const args: JobInput = { input, outDir: out, options: jobOptions(options), searchAttributes: true };
      return client.workflow.execute(JOB_WORKFLOW, {
        taskQueue,
        workflowId: id,
        args: [args],
      }) as Promise<JobSummary>;
    },
    async stats() {
      const res = await fetch(emulator.url.replace(/\/v1$/, '/_emulator/stats'), {
        headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {},
      });
      return (await res.json()) as EmulatorStats;
    },
    async close() {
      await h.stopWorker();
      await stack.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  if (opts.inProcessWorker !== false) await h.startWorker();
  return h;
}

/** Writes a chat JSONL input under the harness's data root. */
/**
 * Polls the provider has answered: list calls of the task queue's watcher, and retrieves where a
 * batch is read one by one (the watcher's fallback, or a provider that cannot list).
 */
export function pollsIn(stats: EmulatorStats): number {
  return (stats.requests.list ?? 0) + (stats.requests.retrieve ?? 0);
}

/** `prompt` starts each question: jobs that must not reuse each other's answers ask different ones. */
export function writeChatInput(
  dataDir: string,
  name: string,
  lines: number,
  models = ['qwen-plus'],
  prompt = 'question',
): string {
  const rows: string[] = [];
  for (let i = 0; i < lines; i++) {
    const model = models[i % models.length]!;
    rows.push(
      JSON.stringify({
        custom_id: `req-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model, messages: [{ role: 'user', content: `${prompt} ${i}` }] },
      }),
    );
  }
  fs.writeFileSync(path.join(dataDir, name), rows.join('\n') + '\n');
  return name;
}

export function readJsonl<T = Record<string, unknown>>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}
