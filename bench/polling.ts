// Polling cost benchmark: what one shard costs in Temporal history events and actions, and in
// provider calls, while its batch runs, with per-batch polling against polling by listing (the
// task queue's watcher, workflows/watcher.ts), for a short and a long batch.
//
// The clock is compressed, the work is not: `--poll` ms of wall time stand for the default mean
// poll interval of 90 s, so the emulator runs its batches `90 s / poll` times faster (`timeScale`)
// and the shard's fallback read (120 poll intervals) stands for its 3 h. Every poll, sweep, wake
// and timer is the same command whatever its length. The per-batch baseline is the same job
// against a provider without list routes (the emulator's `no-list-routes` quirk), which is where
// batchpilot keeps per-batch polling. Both modes run side by side, each on a dev server, emulator
// and worker of its own; the dev servers keep their default dynamic config, so continue-as-new is
// suggested at 4,096 events as in production.
//
//   npm run bench:polling                       # 20 shards, 10 min and 24 h batches (~20 minutes)
//   options: --minutes 10,1440 (simulated batch lengths), --poll 1000 (ms standing for 90 s;
//   dev-server timers fire on a ~1 s grain), --shards 20, --lines 20 (per shard), --modes batch,list
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { watcherWorkflowId } from '../common/batch-watch.ts';
import { unitWorkflowId } from '../common/keys.ts';
import { PROFILES } from '../common/profiles.ts';
import type { EmulatorStats } from '../emulator/index.ts';
import type { WorkflowHandle } from '@temporalio/client';
import { JOB_WORKFLOW } from '../common/definitions.ts';
import type { JobInput, JobSummary } from '../common/job-types.ts';
import { actionsOf, historyRuns, jobOptions, startStack, type RunCounts } from './stack.ts';
import { DATA, int, printTable, secs } from './util.ts';

const ROOT = path.join(DATA, 'polling');
const MEAN_POLL_MS = 90_000;
const WARN_EVENTS = 10_240;
const OWN_ROUTES = new Set(['stats', 'faults']);

type Mode = 'batch' | 'list';

interface Outcome {
  mode: Mode;
  minutes: number;
  shards: number;
  perShard: RunCounts[][];
  watcher: RunCounts[];
  job: RunCounts[];
  stats: EmulatorStats;
  wallMs: number;
}

function writeInput(file: string, lines: number): void {
  const rows = Array.from({ length: lines }, (_, i) =>
    JSON.stringify({
      custom_id: `req-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'qwen-plus', messages: [{ role: 'user', content: `question ${i}` }] },
    }),
  );
  fs.writeFileSync(file, rows.join('\n') + '\n');
}

/**
 * The job's summary, waiting as long as it takes: on a loaded machine the long poll for a result
 * that is many minutes away can end in DEADLINE_EXCEEDED, which says nothing about the job.
 */
async function resultOf(handle: WorkflowHandle): Promise<JobSummary> {
  for (;;) {
    try {
      return (await handle.result()) as JobSummary;
    } catch (err) {
      if (!/DEADLINE_EXCEEDED/.test(String((err as { cause?: unknown }).cause ?? err))) throw err;
    }
  }
}

async function runOnce(
  mode: Mode,
  minutes: number,
  o: { shards: number; lines: number; poll: number },
): Promise<Outcome> {
  const dir = path.join(ROOT, `${mode}-${minutes}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  writeInput(path.join(dir, 'input.jsonl'), o.shards * o.lines);
  // A minute validating and a minute finalizing, the rest spread over the lines (simulated time).
  const batchMs = minutes * 60_000;
  const stack = await startStack({
    dataDir: dir,
    faults: {
      seed: 1,
      validatingMs: 60_000,
      perLineMs: Math.max(0, (batchMs - 120_000) / o.lines),
      finalizingMs: 60_000,
      timeScale: MEAN_POLL_MS / o.poll,
      ...(mode === 'batch' ? { quirks: ['no-list-routes' as const] } : {}),
    },
    taskQueue: `bench-poll-${mode}-${minutes}-${process.pid}`,
  });
  const jobId = `bench-poll-${mode}-${minutes}-${Date.now()}`;
  process.stdout.write(`${mode}: ${o.shards} shards, batches of ${minutes} simulated minutes ...\n`);
  try {
    const t0 = performance.now();
    const args: JobInput = {
      input: 'input.jsonl',
      outDir: 'out',
      options: jobOptions({
        pollIntervalMs: o.poll,
        maxInFlight: o.shards,
        limits: { ...PROFILES.emulator.limits, maxLines: o.lines },
      }),
      searchAttributes: true,
    };
    const handle = await stack.client.workflow.start(JOB_WORKFLOW, {
      taskQueue: stack.taskQueue,
      workflowId: jobId,
      args: [args],
    });
    const summary = await resultOf(handle);
    const wallMs = performance.now() - t0;
    if (summary.status !== 'completed' || summary.lines.succeeded !== o.shards * o.lines)
      throw new Error(`job ${summary.status}: ${JSON.stringify(summary.lines)}`);
    const perShard: RunCounts[][] = [];
    for (let i = 0; i < summary.shards; i++)
      perShard.push(await historyRuns(stack.client, unitWorkflowId(jobId, 1, i)));
    const watcherId = watcherWorkflowId(stack.taskQueue);
    const watcher = mode === 'list' ? await historyRuns(stack.client, watcherId) : [];
    await stack.client.workflow
      .getHandle(watcherId)
      .terminate('bench over')
      .catch(() => undefined);
    const job = await historyRuns(stack.client, jobId);
    const stats = await stack.stats();
    await stack.close();
    process.stdout.write(`${mode}, ${minutes} min: job ${summary.status} in ${secs(wallMs)}\n`);
    return { mode, minutes, shards: summary.shards, perShard, watcher, job, stats, wallMs };
  } catch (err) {
    await stack.close().catch(() => undefined);
    throw err;
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]): number => sum(xs) / xs.length;
const events = (runs: RunCounts[]): number => sum(runs.map((r) => r.events));
const typed = (runs: RunCounts[], type: string): number => sum(runs.map((r) => r.byType[type] ?? 0));

function report(r: Outcome, base: Outcome | undefined): void {
  const ev = r.perShard.map(events);
  const acts = r.perShard.map(actionsOf);
  const maxRun = Math.max(...r.perShard.flatMap((runs) => runs.map((x) => x.events)));
  const calls = Object.entries(r.stats.requests).filter(([k]) => !OWN_ROUTES.has(k));
  const totalCalls = sum(calls.map(([, n]) => n));
  const watcherActions = r.watcher.length ? actionsOf(r.watcher) : 0;
  const rows: [string, string][] = [
    ['history events per shard (mean, max)', `${mean(ev).toFixed(1)}, ${Math.max(...ev)}`],
    ['largest run of a shard', `${int(maxRun)} events (${maxRun < WARN_EVENTS ? 'under' : 'OVER'} 10,240)`],
    ['runs per shard (continue-as-new chain)', mean(r.perShard.map((x) => x.length)).toFixed(2)],
    ['Temporal actions per shard (mean, max)', `${mean(acts).toFixed(1)}, ${Math.max(...acts)}`],
    ['  timers per shard (mean)', mean(r.perShard.map((x) => typed(x, 'timerStarted'))).toFixed(1)],
    [
      '  wake-up signals received per shard',
      mean(r.perShard.map((x) => typed(x, 'workflowExecutionSignaled'))).toFixed(1),
    ],
  ];
  if (r.mode === 'list') {
    rows.push(
      [
        'watcher: runs, events, actions',
        `${r.watcher.length}, ${int(events(r.watcher))}, ${int(watcherActions)}`,
      ],
      ['watcher: sweeps (list activities)', String(typed(r.watcher, 'activityTaskScheduled'))],
      [
        '  actions per shard, its share of the watcher included',
        (mean(acts) + watcherActions / r.shards).toFixed(1),
      ],
    );
  }
  rows.push(
    ['provider calls', calls.map(([k, n]) => `${k} ${n}`).join(', ')],
    ['provider calls per batch', (totalCalls / r.stats.batchesCreated).toFixed(2)],
    [
      '  retrieves / lists per batch',
      `${((r.stats.requests.retrieve ?? 0) / r.stats.batchesCreated).toFixed(2)} / ${((r.stats.requests.list ?? 0) / r.stats.batchesCreated).toFixed(2)}`,
    ],
    ['job workflow events', `${int(events(r.job))} in ${r.job.length} run(s)`],
    ['wall time (context)', secs(r.wallMs)],
  );
  if (base) {
    const be = mean(base.perShard.map(events));
    const ba = mean(base.perShard.map(actionsOf));
    rows.push(
      ['events per shard / per-batch polling', (mean(ev) / be).toFixed(3)],
      [
        'actions per shard (with watcher share) / per-batch',
        ((mean(acts) + watcherActions / r.shards) / ba).toFixed(3),
      ],
    );
  }
  printTable(
    `${r.mode === 'list' ? 'Polling by list' : 'Per-batch polling'}, batches of ${r.minutes} simulated minutes, ${r.shards} shards`,
    rows,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10,1440' },
      poll: { type: 'string', default: '1000' },
      shards: { type: 'string', default: '20' },
      lines: { type: 'string', default: '20' },
      modes: { type: 'string', default: 'batch,list' },
    },
  });
  const o = { shards: Number(values.shards), lines: Number(values.lines), poll: Number(values.poll) };
  const modes = values.modes.split(',') as Mode[];
  process.stdout.write(
    `clock: ${o.poll} ms stands for ${MEAN_POLL_MS / 1000} s (x${MEAN_POLL_MS / o.poll})\n`,
  );
  fs.rmSync(ROOT, { recursive: true, force: true });
  const results: Outcome[] = [];
  try {
    for (const minutes of values.minutes.split(',').map(Number)) {
      // The modes side by side: the same simulated time, each on its own stack.
      results.push(...(await Promise.all(modes.map((m) => runOnce(m, minutes, o)))));
    }
  } finally {
    fs.rmSync(ROOT, { recursive: true, force: true });
  }
  for (const r of results)
    report(
      r,
      r.mode === 'list' ? results.find((x) => x.mode === 'batch' && x.minutes === r.minutes) : undefined,
    );
}

await main();
