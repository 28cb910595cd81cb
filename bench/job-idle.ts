// Idle capacity at the job's continue-as-new: the same job run twice on the same machine, first with
// the workflow code of another checkout (`--before`, e.g. main, whose job drains its shards before
// continuing as new) and then with this tree's (shards outlive the run). Counted from Temporal
// itself: every run of the job's history (events per shard) and each shard's first start and last
// close, from which the largest gap with free capacity (fewer than --max-in-flight shards running
// while some were still to launch) and nothing launched.
//
//   npm run bench:job-idle -- --before /tmp/bp-main     # a checkout of main with node_modules
//   options: --shards 60, --window 8, --batch-ms 8000 (how long a batch runs), --suggest 200
//   (the dev server's continue-as-new suggestion, in events; 4,096 by default on a real server)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { unitWorkflowId } from '../common/keys.ts';
import { PROFILES } from '../common/profiles.ts';
import { activitySpans, historyRuns, startStack } from './stack.ts';
import { DATA, printTable, secs } from './util.ts';

const ROOT = path.join(DATA, 'job-idle');

interface Span {
  start: number;
  end: number;
}

/** Each round-1 shard's first start and last close. */
async function shardSpans(client: Client, jobId: string, shards: number): Promise<Span[]> {
  const spans: Span[] = [];
  for (let i = 0; i < shards; i++) {
    const id = unitWorkflowId(jobId, 1, i);
    const last = await client.workflow.getHandle(id).describe();
    const firstRunId = last.raw.workflowExecutionInfo?.firstRunId ?? last.runId;
    const first = await client.workflow.getHandle(id, firstRunId).describe();
    spans.push({ start: first.startTime.getTime(), end: last.closeTime!.getTime() });
  }
  return spans;
}

/**
 * The longest stretch with fewer than `window` shards running, shards still to launch, and no
 * launch, in ms. Between two consecutive starts or closes the counts do not change.
 */
export function largestIdleGap(spans: Span[], window: number): { ms: number; at: number } {
  const events = [
    ...spans.map((s) => ({ t: s.start, d: 1 })),
    ...spans.map((s) => ({ t: s.end, d: -1 })),
  ].sort((a, b) => a.t - b.t || a.d - b.d);
  let running = 0;
  let launched = 0;
  let idleSince: number | undefined;
  let largest = { ms: 0, at: 0 };
  for (const e of events) {
    if (idleSince !== undefined && e.t - idleSince > largest.ms)
      largest = { ms: e.t - idleSince, at: idleSince };
    if (e.d > 0) {
      launched++;
      idleSince = undefined;
    }
    running += e.d;
    const idle = running < window && launched < spans.length;
    if (idle && idleSince === undefined) idleSince = e.t;
    if (!idle) idleSince = undefined;
  }
  return largest;
}

function writeInput(file: string, lines: number): void {
  const rows: string[] = [];
  for (let i = 0; i < lines; i++)
    rows.push(
      JSON.stringify({
        custom_id: `req-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', messages: [{ role: 'user', content: `question ${i}` }] },
      }),
    );
  fs.writeFileSync(file, rows.join('\n') + '\n');
}

async function runOnce(label: string, workflowsPath: string | undefined, o: Record<string, number>) {
  const dataDir = path.join(ROOT, label);
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  writeInput(path.join(dataDir, 'in.jsonl'), o.shards! * 2);
  const stack = await startStack({
    dataDir,
    // A batch of 2 lines runs validating + 2 lines + finalizing.
    faults: { seed: 1, validatingMs: 100, perLineMs: (o.batchMs! - 200) / 2, finalizingMs: 100 },
    dynamicConfig: [`limit.historyCount.suggestContinueAsNew=${o.suggest}`],
    ...(workflowsPath ? { workflowsPath } : {}),
  });
  const jobId = `bench-idle-${label}-${Date.now()}`;
  process.stdout.write(`${label}: running ${jobId} ...\n`);
  try {
    const t0 = Date.now();
    const summary = await stack.runJob(jobId, 'in.jsonl', 'out', {
      pollIntervalMs: 1000,
      maxInFlight: o.window!,
      limits: { ...PROFILES.emulator.limits, maxLines: 2 },
    });
    const wallMs = Date.now() - t0;
    const runs = await historyRuns(stack.client, jobId);
    const events = runs.reduce((a, r) => a + r.events, 0);
    const spans = await shardSpans(stack.client, jobId, summary.shards);
    const checks = (await activitySpans(stack.client, jobId)).filter((a) => a.type === 'endedUnits').length;
    const gap = largestIdleGap(spans, o.window!);
    const jobStart = Math.min(...spans.map((x) => x.start));
    const stats = await stack.stats();
    return {
      label,
      wallMs,
      status: summary.status,
      shards: summary.shards,
      batches: stats.batchesCreated,
      runs: runs.length,
      largestRun: Math.max(...runs.map((r) => r.events)),
      events,
      gapMs: gap.ms,
      gapAt: gap.at - jobStart,
      checks,
    };
  } finally {
    await stack.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      before: { type: 'string' },
      shards: { type: 'string', default: '60' },
      window: { type: 'string', default: '8' },
      'batch-ms': { type: 'string', default: '8000' },
      suggest: { type: 'string', default: '200' },
    },
  });
  const o = {
    shards: Number(values.shards),
    window: Number(values.window),
    batchMs: Number(values['batch-ms']),
    suggest: Number(values.suggest),
  };
  const results = [];
  if (values.before)
    results.push(await runOnce('before', path.join(path.resolve(values.before), 'workflows', 'index.ts'), o));
  results.push(await runOnce('after', undefined, o));
  printTable(
    `Job continue-as-new: ${o.shards} shards, ${o.window} at once, ${secs(o.batchMs)} batches, suggestion at ${o.suggest} events`,
    results.flatMap((r) => [
      [`${r.label}: job wall time, status`, `${secs(r.wallMs)}, ${r.status}`],
      [`${r.label}: batches created`, `${r.batches} for ${r.shards} shards`],
      [
        `${r.label}: job history events (per shard)`,
        `${r.events} (${(r.events / r.shards).toFixed(1)}) in ${r.runs} runs, largest ${r.largestRun}`,
      ],
      [
        `${r.label}: largest gap, free capacity and nothing launched`,
        `${secs(r.gapMs)} (from ${secs(r.gapAt)} after the first shard's start)`,
      ],
      [`${r.label}: checks made (endedUnits activities)`, String(r.checks)],
    ]),
  );
}

if (process.argv[1] === import.meta.filename) await main();
