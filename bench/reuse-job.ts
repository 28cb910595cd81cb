// Reuse, whole jobs: what a job with half of its lines in the answer store costs against the same
// job without reuse, both run end to end in one run of the bench (plan with every line looked up,
// upload, batches, collection storing answers, merge), on the fleet of `scripts/fleet/`
// (PostgreSQL-backed Temporal, `batchpilot worker` processes, the emulator with instant batches,
// so the provider's own time, which reuse saves in production, is near zero here: the comparison is
// of batchpilot's own work only).
//
// Three jobs on one data root, whose answer store they share:
//   fill     every other line of the input: collection stores those answers (timed apart)
//   without  the whole input with `--no-reuse`: nothing looked up, nothing stored
//   with     the whole input: every line looked up, half answered from the store, the rest sent
//            (and their answers stored, as a default job does)
//
//   npm run bench:reuse-job                          # 1M lines of ~300 bytes, 2 workers
//   npm run bench:reuse-job -- --lines 10000000      # the 10M run
//   options: --line-bytes 300 (the input's line size), --workers 2, --keep
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import type { JobSummary } from '../common/job-types.ts';
import { startFleet } from '../scripts/fleet/fleet.ts';
import { bundleWorkflows } from '../worker/workflow-bundle.ts';
import { runFleetJob, type FleetJobResult } from './fleet-job.ts';
import { ensureChatFile } from './gen-chat.ts';
import { DATA, int, printTable, secs } from './util.ts';

const MAX_LINES = 50_000;

/** Every other line of `input` (the 1st, 3rd, ...) into `out`, once. */
async function everyOtherLine(input: string, out: string): Promise<void> {
  if (fs.existsSync(out)) return;
  const tmp = `${out}.tmp`;
  const w = fs.createWriteStream(tmp);
  let i = 0;
  for await (const line of readline.createInterface({
    input: fs.createReadStream(input),
    crlfDelay: Infinity,
  })) {
    if (i++ % 2 === 0 && !w.write(`${line}\n`)) await new Promise<void>((r) => w.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    w.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  fs.renameSync(tmp, out);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '1000000' },
      'line-bytes': { type: 'string', default: '300' },
      workers: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
    },
  });
  const lines = Number(values.lines);
  const workers = Number(values.workers);
  const lineBytes = Number(values['line-bytes']);
  const input = path.join(DATA, `chat-${lines}-${lineBytes}.jsonl`);
  ensureChatFile(input, lines, lineBytes);
  const half = path.join(DATA, `chat-${lines}-${lineBytes}-every-other.jsonl`);
  await everyOtherLine(input, half);

  const root = path.join(DATA, 'reuse-job');
  fs.rmSync(root, { recursive: true, force: true });
  const bundleFile = path.join(DATA, 'reuse-job-workflows.js');
  fs.writeFileSync(bundleFile, (await bundleWorkflows()).code);
  const dataDir = path.join(root, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  fs.linkSync(input, path.join(dataDir, 'input.jsonl'));
  fs.linkSync(half, path.join(dataDir, 'half.jsonl'));
  const fleet = await startFleet({
    root,
    keep: values.keep,
    emulator: { faults: { validatingMs: 0, perLineMs: 0, finalizingMs: 0 } },
    worker: { taskQueue: 'unused', provider: 'emulator', workflowBundle: bundleFile, logLevel: 'warn' },
  });
  // The store must hold every answer of the fill job: no eviction in the measurement.
  const extraEnv = { BATCHPILOT_ANSWERS_MAX_BYTES: '1000GB' };
  const run = async (
    name: string,
    file: string,
    args: string[],
  ): Promise<FleetJobResult & { sent: number }> => {
    const before = (await fleet.emulator!.stats()).linesInBatches;
    const out = path.join(dataDir, `out-${name}`);
    const r = await runFleetJob(fleet, {
      name,
      taskQueue: `bench-reuse-${name}`,
      workers,
      dataDir,
      extraEnv,
      input: file,
      out: `out-${name}`,
      maxLines: MAX_LINES,
      args,
      readSummary: () =>
        Promise.resolve(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as JobSummary),
    });
    // Outputs and work files go at once: at 10M lines each job's are tens of GB.
    fs.rmSync(out, { recursive: true, force: true });
    const sent = (await fleet.emulator!.stats()).linesInBatches - before;
    process.stdout.write(
      `${name}: ${secs(r.wallMs)}, ${int(sent)} lines sent, ${int(r.summary.lines.reused ?? 0)} reused\n`,
    );
    return { ...r, sent };
  };
  try {
    process.stdout.write(`fleet up in ${JSON.stringify(fleet.timings)} s; logs in ${fleet.logDir}\n`);
    const fill = await run('fill', 'half.jsonl', []);
    const without = await run('without', 'input.jsonl', ['--no-reuse']);
    const withReuse = await run('with', 'input.jsonl', []);
    const rows: [string, string][] = [
      ['fill job (every other line, stores answers)', `${secs(fill.wallMs)}, ${int(fill.sent)} lines sent`],
      ['job without reuse (--no-reuse)', `${secs(without.wallMs)}, ${int(without.sent)} lines sent`],
      [
        'job with reuse (50% in the store)',
        `${secs(withReuse.wallMs)}, ${int(withReuse.sent)} lines sent, ${int(withReuse.summary.lines.reused ?? 0)} reused`,
      ],
      ['with / without (wall)', `${(withReuse.wallMs / without.wallMs).toFixed(2)}×`],
      [
        'lines ok (without / with)',
        `${int(without.summary.lines.succeeded)} / ${int(withReuse.summary.lines.succeeded)}`,
      ],
      ['worker peak RSS, without', without.workerPeakMB.map((m) => `${m.toFixed(0)} MB`).join(', ')],
      ['worker peak RSS, with', withReuse.workerPeakMB.map((m) => `${m.toFixed(0)} MB`).join(', ')],
    ];
    printTable(`reuse, whole jobs: ${int(lines)} lines, ${workers} workers`, rows);
    process.stdout.write(
      `${JSON.stringify({ lines, workers, fillMs: Math.round(fill.wallMs), withoutMs: Math.round(without.wallMs), withMs: Math.round(withReuse.wallMs), sent: { fill: fill.sent, without: without.sent, with: withReuse.sent }, reused: withReuse.summary.lines.reused, peakMB: { without: without.workerPeakMB, with: withReuse.workerPeakMB } })}\n`,
    );
  } finally {
    await fleet.stop();
    fs.rmSync(bundleFile, { force: true });
    if (!values.keep) fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
