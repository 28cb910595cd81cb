// Rate-limit benchmark: the share of provider calls answered 429 when the provider enforces
// DashScope's published limits (the emulator's `rateLimits: "published"`: create, retrieve, cancel
// 1,000/min, list 100/min, upload 180/min, other file calls 600/min), for a job of many small
// shards polled every second, with the fleet's pacing off (the baseline, the same job in the same
// run) and on. Counts, not times: the emulator counts every request and every 429 by route.
//
//   npm run bench:rate-limits                    # 120 and 500 shards, off then on (~15 minutes)
//   options: --shards 120,500, --lines 2 (per shard), --poll 1000 (ms), --batch-ms 60000 (how long
//   a batch stays unfinished), --modes off,on, --max-in-flight (default: every shard at once),
//   --provider-limits published|none (none: the emulator enforces no rate, to see how many
//   batches a job holds at once when uploads are not the bottleneck)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { unitWorkflowId } from '../common/keys.ts';
import { PROFILES } from '../common/profiles.ts';
import { DASHSCOPE_RATE_LIMITS, PACING_SHARE } from '../common/rate-limits.ts';
import type { EmulatorStats } from '../emulator/index.ts';
import type { Client } from '@temporalio/client';
import { activitySpans, startStack } from './stack.ts';
import { DATA, int, printTable, secs } from './util.ts';

const ROOT = path.join(DATA, 'rate-limits');
const OWN_ROUTES = new Set(['stats', 'faults']);

interface Outcome {
  shards: number;
  mode: 'off' | 'on';
  calls: number;
  throttled: number;
  byRoute: Record<string, { calls: number; throttled: number }>;
  batches: number;
  /** The most batches unfinished at the provider at once. */
  peakInFlight: number;
  wallMs: number;
  /** Mean ms a poll took from scheduled to completed (its wait in the paced queue included), sampled. */
  pollQueueMs: number;
  /** Most attempts of each paced activity type started within any one second (all shards). */
  peakPerSecond: Record<string, number>;
}

/** Start times (epoch ms) of every activity attempt by type, across a workflow's runs. */
async function activityStarts(
  client: Client,
  workflowId: string,
  into: Map<string, number[]>,
): Promise<void> {
  let runId: string | undefined;
  for (;;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const types = new Map<string, string>();
    for (const ev of history.events ?? []) {
      const s = ev.activityTaskScheduledEventAttributes;
      if (s) types.set(String(ev.eventId), s.activityType?.name ?? '?');
      const st = ev.activityTaskStartedEventAttributes;
      if (st) {
        const type = types.get(String(st.scheduledEventId)) ?? '?';
        const t = Number(ev.eventTime?.seconds ?? 0) * 1000 + (ev.eventTime?.nanos ?? 0) / 1e6;
        const list = into.get(type) ?? [];
        // A retried attempt is recorded once, at its last start: one more start a second is near enough.
        list.push(t);
        into.set(type, list);
      }
    }
    const prev = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!prev) return;
    runId = prev;
  }
}

/** The most of `times` inside any window of `windowMs`. */
function peakInWindow(times: number[], windowMs = 1000): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
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

function tally(stats: EmulatorStats): Pick<Outcome, 'calls' | 'throttled' | 'byRoute'> {
  const byRoute: Outcome['byRoute'] = {};
  for (const [route, n] of Object.entries(stats.requests)) {
    if (OWN_ROUTES.has(route)) continue;
    byRoute[route] = { calls: n, throttled: stats.throttled?.[route] ?? 0 };
  }
  const calls = Object.values(byRoute).reduce((a, r) => a + r.calls, 0);
  const throttled = Object.values(byRoute).reduce((a, r) => a + r.throttled, 0);
  return { calls, throttled, byRoute };
}

async function runOnce(
  shards: number,
  mode: 'off' | 'on',
  o: { lines: number; poll: number; batchMs: number; maxInFlight?: number; providerLimits: boolean },
): Promise<Outcome> {
  const dir = path.join(ROOT, `${shards}-${mode}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  writeInput(path.join(dir, 'input.jsonl'), shards * o.lines);
  const stack = await startStack({
    dataDir: dir,
    faults: {
      seed: 1,
      validatingMs: Math.round(o.batchMs * 0.75),
      perLineMs: 0,
      finalizingMs: Math.round(o.batchMs * 0.25),
      ...(o.providerLimits ? { rateLimits: 'published' as const } : {}),
    },
    rateLimits: mode === 'on' ? DASHSCOPE_RATE_LIMITS : 'off',
    taskQueue: `bench-rl-${shards}-${mode}-${process.pid}`,
  });
  const jobId = `bench-rl-${shards}-${mode}-${Date.now()}`;
  process.stdout.write(`${shards} shards, pacing ${mode} ...\n`);
  try {
    const t0 = performance.now();
    const summary = await stack.runJob(jobId, 'input.jsonl', 'out', {
      pollIntervalMs: o.poll,
      maxInFlight: o.maxInFlight ?? shards,
      limits: { ...PROFILES.emulator.limits, maxLines: o.lines },
    });
    const wallMs = performance.now() - t0;
    if (summary.status !== 'completed' || summary.lines.succeeded !== shards * o.lines)
      throw new Error(`job ${summary.status}: ${JSON.stringify(summary.lines)}`);
    const stats = await stack.stats();
    // Where the polls waited: a sample of shards' histories.
    const waits: number[] = [];
    for (let i = 0; i < shards; i += Math.max(1, Math.floor(shards / 10))) {
      for (const s of await activitySpans(stack.client, unitWorkflowId(jobId, 1, i)))
        if (s.type === 'getBatch') waits.push(s.end - s.start);
    }
    const starts = new Map<string, number[]>();
    for (let i = 0; i < shards; i++) await activityStarts(stack.client, unitWorkflowId(jobId, 1, i), starts);
    await stack.close();
    return {
      shards,
      mode,
      ...tally(stats),
      batches: stats.batchesCreated,
      peakInFlight: stats.peakUnfinishedBatches,
      wallMs,
      pollQueueMs: waits.length ? waits.reduce((a, b) => a + b, 0) / waits.length : NaN,
      peakPerSecond: Object.fromEntries([...starts].map(([type, t]) => [type, peakInWindow(t)])),
    };
  } catch (err) {
    await stack.close().catch(() => undefined);
    throw err;
  }
}

const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(2)}%`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shards: { type: 'string', default: '120,500' },
      lines: { type: 'string', default: '2' },
      poll: { type: 'string', default: '1000' },
      'batch-ms': { type: 'string', default: '60000' },
      modes: { type: 'string', default: 'off,on' },
      'max-in-flight': { type: 'string' },
      'provider-limits': { type: 'string', default: 'published' },
    },
  });
  const o = {
    lines: Number(values.lines),
    poll: Number(values.poll),
    batchMs: Number(values['batch-ms']),
    ...(values['max-in-flight'] ? { maxInFlight: Number(values['max-in-flight']) } : {}),
    providerLimits: values['provider-limits'] !== 'none',
  };
  const modes = values.modes.split(',') as ('off' | 'on')[];
  const results: Outcome[] = [];
  try {
    for (const shards of values.shards.split(',').map(Number)) {
      for (const mode of modes) {
        const r = await runOnce(shards, mode, o);
        results.push(r);
        process.stdout.write(
          `  ${pct(r.throttled, r.calls)} of ${int(r.calls)} calls answered 429 in ${secs(r.wallMs)}\n`,
        );
      }
    }
  } finally {
    fs.rmSync(ROOT, { recursive: true, force: true });
  }
  for (const r of results) {
    const off = results.find((x) => x.shards === r.shards && x.mode === 'off');
    printTable(`${r.shards} shards of ${o.lines} lines, ${o.poll} ms polls, pacing ${r.mode}`, [
      ['calls answered 429', `${int(r.throttled)} of ${int(r.calls)} (${pct(r.throttled, r.calls)})`],
      [
        '  by route (429 / calls)',
        Object.entries(r.byRoute)
          .map(([k, v]) => `${k} ${v.throttled}/${v.calls}`)
          .join(', '),
      ],
      ['batches created', `${r.batches} (${r.shards} shards)`],
      ['most batches unfinished at once', int(r.peakInFlight)],
      ['provider calls per batch', (r.calls / r.batches).toFixed(2)],
      ['  answered (not 429) per batch', ((r.calls - r.throttled) / r.batches).toFixed(2)],
      ['mean poll activity, scheduled -> completed', secs(r.pollQueueMs)],
      [
        'most activity starts in one second',
        Object.entries(r.peakPerSecond)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      ],
      ['wall time (context)', secs(r.wallMs)],
      ...(off && r !== off
        ? ([
            ['429 rate / baseline', (r.throttled / r.calls / (off.throttled / off.calls)).toFixed(3)],
            ['calls / baseline', (r.calls / off.calls).toFixed(3)],
          ] as [string, string][])
        : []),
    ]);
  }
  // What a paced fleet cannot beat: every shard uploads once at the upload limit's share.
  const uploadPerS = ((DASHSCOPE_RATE_LIMITS.upload ?? 0) / 60) * PACING_SHARE;
  printTable('Bound for 2,000 shards: their uploads alone take this long at the paced rate', [
    ['uploads at the paced rate', `${uploadPerS.toFixed(2)}/s -> ${secs((2000 / uploadPerS) * 1000)}`],
  ]);
}

await main();
