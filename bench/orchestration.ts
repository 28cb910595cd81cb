// Orchestration overhead benchmark: a whole job end to end (plan, one shard workflow per
// shard, upload, create, 1 s polls, collect, merge) through the real worker, a Temporal dev server
// and the emulator with instant batches, against the same work done without Temporal and without a
// provider: planInput on the same input plus mergeJob on the job's own collected outcomes, measured
// in the same run. Also: history events per shard workflow and per job, worker and emulator peak
// RSS, provider calls per batch (emulator stats), and where the job's time went (from history).
//
//   npm run bench:orchestration                                     # 1M lines, 20 shards
//   npm run bench:orchestration -- --lines 10000000 --shards 200    # the 10M case
//   options: --poll 1000 (ms), --keep (keep input and outputs under bench/data/orch)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { JobSummary } from '../common/job-types.ts';
import { unitWorkflowId } from '../common/keys.ts';
import { PROFILES } from '../common/profiles.ts';
import { ensureChatFile } from './gen-chat.ts';
import { actionsOf, activitySpans, historyRuns, startStack, type RunCounts } from './stack.ts';
import { DATA, int, mb, peakRssMB, printTable, runJsonChild, secs } from './util.ts';

const ROOT = path.join(DATA, 'orch');

interface Baseline {
  planMs: number;
  mergeMs: number;
  planRssMB: number;
  cpuMs: number;
}

/** Child mode: planInput on the input, then mergeJob on the job's work dir, timed apart. */
async function baselineChild(input: string, outDir: string, maxLines: string): Promise<void> {
  const { planInput } = await import('../planner/index.ts');
  const { MockActivityEnvironment } = await import('@temporalio/testing');
  const { mergeActivities } = await import('../activities/merge.ts');
  const { pino } = await import('pino');
  const planOut = path.join(ROOT, 'baseline-plan');
  fs.rmSync(planOut, { recursive: true, force: true });
  let t = performance.now();
  const report = await planInput({
    input,
    outDir: planOut,
    endpoint: '/v1/chat/completions',
    limits: { ...PROFILES.emulator.limits, maxLines: Number(maxLines) },
  });
  const planMs = performance.now() - t;
  const planRssMB = peakRssMB();
  fs.rmSync(planOut, { recursive: true, force: true });
  const workDir = path.join(outDir, '.batchpilot');
  fs.rmSync(path.join(workDir, 'final'), { recursive: true, force: true });
  const deps = {
    openai: undefined as never,
    profile: undefined as never,
    dataDir: ROOT,
    logger: pino({ level: 'silent' }),
  };
  t = performance.now();
  await new MockActivityEnvironment().run(mergeActivities(deps).mergeJob, {
    paths: { input, outDir, workDir },
    shardLines: report.shardList.map((s) => s.lines),
    jobStatus: 'completed' as const,
  });
  const mergeMs = performance.now() - t;
  const cpu = process.cpuUsage();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  process.stdout.write(`${JSON.stringify({ planMs, mergeMs, planRssMB, cpuMs } satisfies Baseline)}\n`);
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]): number => (xs.length ? sum(xs) / xs.length : 0);

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      baseline: { type: 'boolean' },
      lines: { type: 'string', default: '1000000' },
      shards: { type: 'string', default: '20' },
      poll: { type: 'string', default: '1000' },
      keep: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  if (values.baseline) return baselineChild(positionals[0]!, positionals[1]!, positionals[2]!);
  const lines = Number(values.lines);
  const maxLines = Math.ceil(lines / Number(values.shards));
  fs.mkdirSync(ROOT, { recursive: true });
  const inputName = `input-${lines}.jsonl`;
  const input = path.join(ROOT, inputName);
  ensureChatFile(input, lines);
  const inputBytes = fs.statSync(input).size;
  const outName = `out-${lines}`;
  const outDir = path.join(ROOT, outName);
  fs.rmSync(outDir, { recursive: true, force: true });

  process.stdout.write('starting dev server, emulator (instant batches) and worker ...\n');
  const stack = await startStack({
    dataDir: ROOT,
    faults: { seed: 1, validatingMs: 0, perLineMs: 0, finalizingMs: 0 },
  });
  const jobId = `bench-orch-${lines}-${Date.now()}`;
  process.stdout.write(`running job ${jobId} (${int(lines)} lines, ${mb(inputBytes)}) ...\n`);
  const t0 = performance.now();
  let summary: JobSummary;
  try {
    summary = await stack.runJob(jobId, inputName, outName, {
      pollIntervalMs: Number(values.poll),
      keepWorkDir: true,
      limits: { ...PROFILES.emulator.limits, maxLines },
    });
  } catch (err) {
    await stack.close();
    throw err;
  }
  const wallMs = performance.now() - t0;
  process.stdout.write(`job ${summary.status} in ${secs(wallMs)}: ${JSON.stringify(summary.lines)}\n`);
  const stats = await stack.stats();
  const jobRuns = await historyRuns(stack.client, jobId);
  const shardRuns: RunCounts[][] = [];
  const shardSpans: Awaited<ReturnType<typeof activitySpans>>[] = [];
  for (let i = 0; i < summary.shards; i++) {
    shardRuns.push(await historyRuns(stack.client, unitWorkflowId(jobId, 1, i)));
    shardSpans.push(await activitySpans(stack.client, unitWorkflowId(jobId, 1, i)));
  }
  const jobSpans = await activitySpans(stack.client, jobId);
  const stopped = await stack.stopChildren();
  const { workerMB, emulatorMB, workerSamples } = stopped;
  await stack.close();

  process.stdout.write('baseline: planInput + mergeJob alone ...\n');
  const base = await runJsonChild<Baseline>(import.meta.filename, [
    '--baseline',
    input,
    outDir,
    String(maxLines),
  ]);
  if (!values.keep) {
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.rmSync(input, { force: true });
  }

  const span = (type: string) => jobSpans.find((s) => s.type === type);
  const plan = span('planJob')!;
  const merge = span('mergeJob')!;
  const spanMs = (s: { start: number; end: number }) => s.end - s.start;
  const perShard = (type: string) =>
    shardSpans.map((spans) => sum(spans.filter((s) => s.type === type).map(spanMs)));
  // Batch time: from the batch's creation to the start of collection (the emulator's processing
  // plus up to one poll interval).
  const batchWait = shardSpans.map((spans) => {
    const created = spans.find((s) => s.type === 'createBatch');
    const collect = spans.find((s) => s.type === 'collectUnit');
    return created && collect ? collect.start - created.end : 0;
  });
  const shardEvents = shardRuns.map((runs) => sum(runs.map((r) => r.events)));
  const polls = shardRuns.map((runs) => sum(runs.map((r) => r.byType.timerStarted ?? 0)));
  const calls = Object.entries(stats.requests).filter(([k]) => k !== 'stats' && k !== 'faults');
  const totalCalls = sum(calls.map(([, n]) => n));
  const batches = stats.batchesCreated;
  const baselineMs = base.planMs + base.mergeMs;
  const collectStart = Math.min(
    ...shardSpans.flatMap((sp) => sp.filter((s) => s.type === 'collectUnit').map((s) => s.start)),
  );
  // Peak of the 500 ms samples within a phase ('-' when the phase was shorter than a sample).
  const peakIn = (from: number, to: number) => {
    const inside = workerSamples.filter(([t]) => t >= from && t <= to).map(([, v]) => v);
    return inside.length ? Math.max(...inside).toFixed(0) : '-';
  };
  const rssByPhase = `plan ${peakIn(plan.start, plan.end)}, upload+batches ${peakIn(plan.end, collectStart)}, collect ${peakIn(collectStart, merge.start)}, merge ${peakIn(merge.start, merge.end)} MB`;

  printTable(
    `Orchestration, ${int(lines)} lines (${mb(inputBytes)}), ${summary.shards} shards, ${values.poll} ms polls, instant batches`,
    [
      ['job end to end (wall)', secs(wallMs)],
      [
        'baseline: planInput + mergeJob alone',
        `${secs(baselineMs)} (plan ${secs(base.planMs)}, merge ${secs(base.mergeMs)})`,
      ],
      ['job / baseline', `${(wallMs / baselineMs).toFixed(2)}x (target <= 1.5x)`],
      ['  plan activity', secs(spanMs(plan))],
      ['  shard phase (plan end -> merge start)', secs(merge.start - plan.end)],
      ['    upload per shard (mean)', secs(mean(perShard('uploadUnit')))],
      ['    batch create -> collect start (mean)', secs(mean(batchWait))],
      ['    collect per shard (mean)', secs(mean(perShard('collectUnit')))],
      ['  merge activity', secs(spanMs(merge))],
      [
        'CPU time: worker, emulator, Temporal server',
        `${secs(stopped.workerCpuMs)}, ${secs(stopped.emulatorCpuMs)}, ${secs(stopped.serverCpuMs)} (baseline process ${secs(base.cpuMs)}; 2 cores)`,
      ],
      [
        'history events per shard workflow',
        `${mean(shardEvents).toFixed(0)} mean, ${Math.max(...shardEvents)} max (${mean(polls).toFixed(1)} polls mean)`,
      ],
      ['history events per job workflow', `${sum(jobRuns.map((r) => r.events))} in ${jobRuns.length} run(s)`],
      [
        'Temporal actions per shard workflow / job',
        `${mean(shardRuns.map(actionsOf)).toFixed(0)} mean / ${actionsOf(jobRuns)}`,
      ],
      [
        'activity retries (shards + job)',
        String(
          sum(shardRuns.flat().map((r) => r.activityRetries)) + sum(jobRuns.map((r) => r.activityRetries)),
        ),
      ],
      ['history events, job + shards', int(sum(jobRuns.map((r) => r.events)) + sum(shardEvents))],
      [
        'worker peak RSS',
        `${workerMB.toFixed(0)} MB (${stack.workerReadyMB.toFixed(0)} MB when it started polling)`,
      ],
      ['  worker peak RSS by phase', rssByPhase],
      ['emulator peak RSS (context)', `${emulatorMB.toFixed(0)} MB`],
      ['batches created', `${batches} (${summary.batches} in the summary)`],
      [
        'provider calls per batch',
        `${(totalCalls / batches).toFixed(1)}: ${calls.map(([k, n]) => `${k} ${(n / batches).toFixed(1)}`).join(', ')}`,
      ],
    ],
  );
}

await main();
