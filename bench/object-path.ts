// The object path against the local path: the same job run twice in one run of the bench, once
// with its data on the workers' local disk and once with input, work files and outputs in
// S3-compatible object storage (versitygw on this machine's disk, behind a counting proxy). Both
// runs use the fleet's production shape: the Temporal server on PostgreSQL, `batchpilot worker`
// processes configured by environment, the emulator with instant batches as the provider, and the
// job started with `batchpilot start --wait` as a user would. Reports the ratio of wall times,
// the S3 requests and bytes per input byte by operation, and each worker's peak RSS.
//
//   npm run bench:object-path                                   # 1M lines, 20 shards, 2 workers
//   npm run bench:object-path -- --lines 200000 --shards 4      # a quick run
//   options: --workers 2, --keep (keep the fleet's folder and the generated input)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { JobSummary } from '../common/job-types.ts';
import { Bucket } from '../scripts/fleet/bucket.ts';
import { startFleet } from '../scripts/fleet/fleet.ts';
import { storageEnvironment } from '../scripts/fleet/s3.ts';
import { bundleWorkflows } from '../worker/workflow-bundle.ts';
import { runFleetJob } from './fleet-job.ts';
import { ensureChatFile } from './gen-chat.ts';
import { startS3Counter, totals, type S3Counts } from './s3-counter.ts';
import { DATA, int, mb, printTable, secs } from './util.ts';

const BUCKET = 'batchpilot-bench';
/**
 * Neither run stores answers: that is what bench/reuse-job.ts measures, and a local store's file per
 * answer (a 4 KiB block each) would add more to the local run's disk than the job's own files.
 */
const NO_REUSE = ['--no-reuse'];

function countsRows(counts: S3Counts, inputBytes: number): [string, string][] {
  return Object.entries(counts)
    .sort((a, b) => b[1].bytesIn + b[1].bytesOut - (a[1].bytesIn + a[1].bytesOut))
    .map(([op, c]) => [
      op,
      `${int(c.requests)} requests, ${mb(c.bytesIn)} up, ${mb(c.bytesOut)} down (${((c.bytesIn + c.bytesOut) / inputBytes).toFixed(3)} per input byte)${c.errors ? `, ${int(c.errors)} answered ≥ 400` : ''}`,
    ]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '1000000' },
      shards: { type: 'string', default: '20' },
      workers: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
    },
  });
  const lines = Number(values.lines);
  const shards = Number(values.shards);
  const workers = Number(values.workers);
  const maxLines = Math.ceil(lines / shards);
  const input = path.join(DATA, `chat-${lines}.jsonl`);
  ensureChatFile(input, lines);
  const inputBytes = fs.statSync(input).size;

  const root = path.join(DATA, 'object-path');
  fs.rmSync(root, { recursive: true, force: true });
  const bundleFile = path.join(DATA, 'object-path-workflows.js');
  fs.writeFileSync(bundleFile, (await bundleWorkflows()).code);
  const fleet = await startFleet({
    root,
    keep: values.keep,
    emulator: { faults: { validatingMs: 0, perLineMs: 0, finalizingMs: 0 } },
    worker: { taskQueue: 'unused', provider: 'emulator', workflowBundle: bundleFile, logLevel: 'warn' },
  });
  const counter = await startS3Counter(fleet.objectStore!.endpoint);
  const bucket = new Bucket(fleet.objectStore!, BUCKET);
  try {
    process.stdout.write(`fleet up in ${JSON.stringify(fleet.timings)} s; logs in ${fleet.logDir}\n`);
    // Local: one data root on this machine's disk that every worker shares (one machine).
    const localData = path.join(root, 'local-data');
    fs.mkdirSync(localData, { recursive: true });
    fs.linkSync(input, path.join(localData, 'input.jsonl'));
    const local = await runFleetJob(fleet, {
      name: 'local',
      taskQueue: 'bench-local',
      workers,
      dataDir: localData,
      extraEnv: {},
      input: 'input.jsonl',
      out: 'out',
      maxLines,
      args: NO_REUSE,
      readSummary: () =>
        Promise.resolve(
          JSON.parse(fs.readFileSync(path.join(localData, 'out', 'summary.json'), 'utf8')) as JobSummary,
        ),
    });
    process.stdout.write(`local job: ${secs(local.wallMs)}\n`);
    // The local run's files go before the object run: at 10M lines they are tens of GB.
    fs.rmSync(localData, { recursive: true, force: true });

    // Object storage: the input uploaded first (not counted), then every byte through the proxy.
    await bucket.create();
    await bucket.putFile('inputs/input.jsonl', input);
    counter.reset();
    const s3Data = path.join(root, 's3-data');
    fs.mkdirSync(s3Data, { recursive: true });
    const env = {
      ...storageEnvironment({ ...fleet.objectStore!, endpoint: counter.endpoint }, `s3://${BUCKET}/work`),
    };
    const s3 = await runFleetJob(fleet, {
      name: 's3',
      taskQueue: 'bench-s3',
      workers,
      dataDir: s3Data,
      extraEnv: env,
      input: bucket.uri('inputs/input.jsonl'),
      out: bucket.uri('outputs/job'),
      maxLines,
      args: NO_REUSE,
      readSummary: async () => JSON.parse(await bucket.getText('outputs/job/summary.json')) as JobSummary,
    });
    const counts = counter.counts();
    const areas = counter.areas();
    const all = totals(counts);
    const objectsLeft = await bucket.list('');
    const stats = await fleet.emulator!.stats();

    const perByte = (all.bytesIn + all.bytesOut) / inputBytes;
    printTable(
      `object path vs local disk: ${int(lines)} lines (${mb(inputBytes)}), ${local.summary.shards} shards, ${workers} workers`,
      [
        ['local job (wall)', secs(local.wallMs)],
        ['object-storage job (wall)', secs(s3.wallMs)],
        ['object / local', `${(s3.wallMs / local.wallMs).toFixed(2)}×`],
        [
          'S3 requests',
          `${int(all.requests)} (${(all.requests / local.summary.shards).toFixed(1)} per shard), ${int(all.errors)} answered ≥ 400`,
        ],
        ['S3 bytes up / down', `${mb(all.bytesIn)} / ${mb(all.bytesOut)}`],
        ['S3 bytes moved per input byte', perByte.toFixed(3)],
        ['worker peak RSS, local', local.workerPeakMB.map((m) => `${m.toFixed(0)} MB`).join(', ')],
        ['worker peak RSS, object storage', s3.workerPeakMB.map((m) => `${m.toFixed(0)} MB`).join(', ')],
        [
          'lines ok (local / object)',
          `${int(local.summary.lines.succeeded)} / ${int(s3.summary.lines.succeeded)}`,
        ],
        [
          'batches (local / object / emulator)',
          `${local.summary.batches} / ${s3.summary.batches} / ${stats.batchesCreated}`,
        ],
        [
          'objects left in the bucket',
          `${objectsLeft.length} (${mb(objectsLeft.reduce((n, o) => n + o.size, 0))})`,
        ],
      ],
    );
    printTable('S3 traffic by operation (object-storage job)', countsRows(counts, inputBytes));
    printTable('S3 traffic by part of the job', countsRows(areas, inputBytes));
    process.stdout.write(
      `${JSON.stringify({ lines, inputBytes, shards: local.summary.shards, workers, localMs: Math.round(local.wallMs), s3Ms: Math.round(s3.wallMs), counts, areas, objectsLeft: objectsLeft.map((o) => o.key), localPeakMB: local.workerPeakMB, s3PeakMB: s3.workerPeakMB })}\n`,
    );
  } finally {
    bucket.close();
    await counter.close();
    await fleet.stop();
    fs.rmSync(bundleFile, { force: true });
    if (!values.keep) fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
