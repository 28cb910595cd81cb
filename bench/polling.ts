// Polling cost benchmark: what one shard costs in Temporal history and actions while its
// batch runs for 24 h at the default poll interval (random 60-120 s, mean 90 s: 86,400 / 90 = 960
// polls). The clock is compressed, not the work: the same 960 polls run at a short fixed interval
// (every poll is the same timer + activity whatever its length) against an emulator batch held in
// progress (perLineMs of an hour), released once the shard has polled 960 times. The dev server
// runs with its default dynamic config, so the real continue-as-new suggestion (4,096 events)
// applies; every run of the shard's continue-as-new chain is counted against the 10,240-event
// warning (and the 51,200-event termination).
//
//   npm run bench:polling                       # 960 polls at 1 s (about 17 minutes, mostly idle)
//   options: --polls 960, --poll 1000 (ms; dev-server timers fire on a ~1 s grain), --shards 1,
//   --lines 100, --trace (mean time between history events)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { unitWorkflowId } from '../common/keys.ts';
import { PROFILES } from '../common/profiles.ts';
import { actionsOf, eventGaps, historyRuns, startStack } from './stack.ts';
import { DATA, int, printTable, secs } from './util.ts';

const ROOT = path.join(DATA, 'polling');
const WARN_EVENTS = 10_240;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      polls: { type: 'string', default: '960' },
      poll: { type: 'string', default: '1000' },
      shards: { type: 'string', default: '1' },
      lines: { type: 'string', default: '100' },
      trace: { type: 'boolean' },
    },
  });
  const targetPolls = Number(values.polls);
  const shards = Number(values.shards);
  const lines = Number(values.lines);
  fs.rmSync(ROOT, { recursive: true, force: true });
  fs.mkdirSync(ROOT, { recursive: true });
  const rows = Array.from({ length: lines }, (_, i) =>
    JSON.stringify({
      custom_id: `req-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'qwen-plus', messages: [{ role: 'user', content: `question ${i}` }] },
    }),
  );
  fs.writeFileSync(path.join(ROOT, 'input.jsonl'), rows.join('\n') + '\n');

  // A line takes an hour: the batch stays in_progress until the faults are replaced.
  const held = { seed: 1, validatingMs: 0, perLineMs: 3_600_000, finalizingMs: 0 };
  const stack = await startStack({ dataDir: ROOT, faults: held });
  const jobId = `bench-poll-${Date.now()}`;
  process.stdout.write(
    `job ${jobId}: ${shards} shard(s) held in progress for ${targetPolls} polls at ${values.poll} ms ...\n`,
  );
  const t0 = performance.now();
  try {
    const done = stack.runJob(jobId, 'input.jsonl', 'out', {
      pollIntervalMs: Number(values.poll),
      limits: { ...PROFILES.emulator.limits, maxLines: Math.ceil(lines / shards) },
    });
    let failed: unknown;
    done.catch((err: unknown) => (failed = err));
    for (let last = 0; ;) {
      if (failed) throw failed as Error;
      const retrieves = (await stack.stats()).requests.retrieve ?? 0;
      if (retrieves >= targetPolls * shards) break;
      if (retrieves - last >= 100) {
        process.stdout.write(`  ${retrieves} polls (${secs(performance.now() - t0)})\n`);
        last = retrieves;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    await stack.setFaults({ seed: 1, validatingMs: 0, perLineMs: 0, finalizingMs: 0 });
    const summary = await done;
    const wallMs = performance.now() - t0;
    process.stdout.write(`job ${summary.status} in ${secs(wallMs)}\n`);
    const job = await historyRuns(stack.client, jobId);
    const perShard = [];
    for (let i = 0; i < summary.shards; i++)
      perShard.push(await historyRuns(stack.client, unitWorkflowId(jobId, 1, i)));
    const stats = await stack.stats();
    if (values.trace) {
      const gaps = await eventGaps(stack.client, unitWorkflowId(jobId, 1, 0));
      process.stdout.write(
        `mean ms between events (last run of shard 0):\n${JSON.stringify(gaps, null, 1)}\n`,
      );
      process.stdout.write(`events by type: ${JSON.stringify(perShard[0]!.map((r) => r.byType))}\n`);
    }
    await stack.close();

    for (const [i, runs] of perShard.entries()) {
      const polls = runs.reduce((a, r) => a + (r.byType.timerStarted ?? 0), 0);
      const events = runs.reduce((a, r) => a + r.events, 0);
      const maxRun = Math.max(...runs.map((r) => r.events));
      const actions = actionsOf(runs);
      const pollRuns = runs.map((r) => r.events).join(', ');
      printTable(
        `Polling, shard ${i}: ${polls} polls on a ${values.poll} ms clock (24 h at 90 s mean = 960)`,
        [
          ['history events, whole chain', `${int(events)} (${(events / polls).toFixed(2)} per poll)`],
          ['runs (continue-as-new chain)', `${runs.length}: ${pollRuns} events`],
          [
            'largest run',
            `${int(maxRun)} events (${maxRun < WARN_EVENTS ? 'under' : 'OVER'} the 10,240 warning; termination at 51,200)`,
          ],
          [
            'Temporal actions (history-derived)',
            `${int(actions)} (${(actions / polls).toFixed(2)} per poll)`,
          ],
          [
            '  of which timers + poll activities',
            int(runs.reduce((a, r) => a + (r.byType.timerStarted ?? 0) * 2, 0)),
          ],
          ['  workflow starts (first + continue-as-new)', String(runs.length)],
          ['activity retries', String(runs.reduce((a, r) => a + r.activityRetries, 0))],
        ],
      );
    }
    const jobEvents = job.reduce((a, r) => a + r.events, 0);
    printTable('Job workflow (parent)', [
      ['history events', `${int(jobEvents)} in ${job.length} run(s)`],
      ['Temporal actions (history-derived)', int(actionsOf(job))],
      [
        'provider calls',
        JSON.stringify(
          Object.fromEntries(Object.entries(stats.requests).filter(([k]) => k !== 'stats' && k !== 'faults')),
        ),
      ],
      ['wall time (context)', secs(wallMs)],
    ]);
  } catch (err) {
    await stack.close().catch(() => undefined);
    throw err;
  } finally {
    fs.rmSync(ROOT, { recursive: true, force: true });
  }
}

await main();
