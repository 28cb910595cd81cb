// Merge benchmark: the real merge activity (activities/merge.ts, mergeJob run inside
// MockActivityEnvironment) over generated outcome files in the exact layout collection leaves
// them (storage/layout.ts): per shard a round-1 outcome file (result lines first, then the
// error lines, as collection reads output then error file), retryable lines packed across shards
// into round-2 units as retry-round.ts packs them, the planner's `.lines` sidecars (Uint32LE input
// line numbers), round-1 manifest.json and rejected.jsonl. Baseline in the same run: `cat` of the
// same outcome files into one file (and `cat` + fsync, since the merge fsyncs what it commits).
// Each merge runs in a child process that reports its own peak RSS.
//
//   npm run bench:merge                                      # 1M lines, 20 shards of 50,000
//   npm run bench:merge -- --lines 250000,1000000,4000000    # RSS against line count
//   options: --shard-lines 50000, --retry-rate 0.1, --rounds 3, --keep (keep bench/data/merge-*
//   and reuse it next time)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { MergeSummary } from '../common/job-types.ts';
import { finalDir, outputFile } from '../storage/layout.ts';
import { generate, type Dataset } from './merge-data.ts';
import { DATA, int, mb, median, peakRssMB, printTable, runJsonChild, secs } from './util.ts';

interface ChildResult {
  /** sha256 of results.jsonl, errors.jsonl, rejected.jsonl, manifest.json and the summary. */
  digest: string;
  ms: number;
  rssMB: number;
  rssBeforeMB: number;
  succeeded: number;
  failed: number;
  rejected: number;
}

// ---------------------------------------------------------------------------------------------
// Child mode: one merge in this process.

function digestOf(ds: Dataset, summary: MergeSummary): string {
  const h = createHash('sha256');
  for (const f of ['results', 'errors', 'rejected', 'manifest'] as const) {
    const fd = fs.openSync(outputFile(ds.outDir, f), 'r');
    const buf = Buffer.allocUnsafe(1 << 22);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
    fs.closeSync(fd);
  }
  h.update(JSON.stringify(summary));
  return h.digest('hex');
}

async function child(datasetFile: string): Promise<void> {
  const ds = JSON.parse(fs.readFileSync(datasetFile, 'utf8')) as Dataset;
  const { MockActivityEnvironment } = await import('@temporalio/testing');
  const { mergeActivities } = await import('../activities/merge.ts');
  const { pino } = await import('pino');
  const deps = {
    openai: undefined as never,
    profile: undefined as never,
    dataDir: ds.dir,
    logger: pino({ level: 'silent' }),
  };
  const env = new MockActivityEnvironment();
  const rssBeforeMB = process.memoryUsage().rss / 1048576;
  const t = performance.now();
  const input = {
    paths: { input: path.join(ds.dir, 'input.jsonl'), outDir: ds.outDir, workDir: ds.workDir },
    shardLines: ds.shardLines,
    jobStatus: 'completed' as const,
  };
  const summary: MergeSummary = await env.run(mergeActivities(deps).mergeJob, input);
  const ms = performance.now() - t;
  const out: ChildResult = {
    digest: digestOf(ds, summary),
    ms,
    rssMB: peakRssMB(),
    rssBeforeMB,
    succeeded: summary.succeeded,
    failed: summary.failed,
    rejected: summary.rejected,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Runs over the data of merge-data.ts.

function catBaseline(ds: Dataset, sync: boolean): number {
  const target = path.join(ds.dir, 'cat.jsonl');
  fs.rmSync(target, { force: true });
  const t = performance.now();
  const fd = fs.openSync(target, 'w');
  const r = spawnSync('cat', ds.outcomeFiles, { stdio: ['ignore', fd, 'inherit'] });
  if (sync) fs.fsyncSync(fd);
  fs.closeSync(fd);
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error('cat failed');
  fs.rmSync(target, { force: true });
  return ms;
}

function resetOutputs(ds: Dataset): void {
  fs.rmSync(finalDir(ds.workDir), { recursive: true, force: true });
  for (const f of ['results', 'errors', 'rejected', 'manifest'] as const)
    fs.rmSync(outputFile(ds.outDir, f), { force: true });
}

/** results.jsonl must hold every successful line, in input order (read in chunks). */
function verify(ds: Dataset, r: ChildResult): void {
  const expectOk = ds.valid - ds.permanent;
  if (r.succeeded !== expectOk || r.failed !== ds.permanent || r.rejected !== ds.rejected)
    throw new Error(`merge counts ${JSON.stringify(r)} differ from the generated data`);
  const fd = fs.openSync(path.join(ds.outDir, 'results.jsonl'), 'r');
  const buf = Buffer.allocUnsafe(1 << 22);
  let have = 0;
  let last = -1;
  let n = 0;
  for (;;) {
    const got = fs.readSync(fd, buf, have, buf.length - have, null);
    have += got;
    let at = 0;
    for (let nl = buf.indexOf(10, at); nl !== -1 && nl < have; nl = buf.indexOf(10, at)) {
      const m = /"custom_id":"req-(\d+)"/.exec(buf.toString('latin1', at, Math.min(nl, at + 200)));
      const id = Number(m![1]);
      if (id <= last) throw new Error(`results.jsonl out of order at req-${id}`);
      last = id;
      n++;
      at = nl + 1;
    }
    buf.copy(buf, 0, at, have);
    have -= at;
    if (got === 0) break;
  }
  fs.closeSync(fd);
  if (n !== expectOk) throw new Error(`results.jsonl has ${n} lines, expected ${expectOk}`);
}

async function benchSize(lines: number, shardCap: number, retryRate: number, rounds: number, keep: boolean) {
  const dir = path.join(DATA, `merge-${lines}`);
  process.stdout.write(`\n[${int(lines)} lines] outcome files in ${dir} ...\n`);
  const t = performance.now();
  const datasetFile = path.join(dir, 'dataset.json');
  const params = JSON.stringify({ lines, shardCap, retryRate });
  // A dataset kept by --keep with the same parameters is reused.
  let ds: Dataset;
  const paramsFile = path.join(dir, 'params.json');
  if (
    fs.existsSync(paramsFile) &&
    fs.readFileSync(paramsFile, 'utf8') === params &&
    fs.existsSync(datasetFile)
  ) {
    ds = JSON.parse(fs.readFileSync(datasetFile, 'utf8')) as Dataset;
  } else {
    ds = generate(dir, lines, shardCap, retryRate);
    fs.writeFileSync(datasetFile, JSON.stringify(ds));
    fs.writeFileSync(paramsFile, params);
  }
  process.stdout.write(
    `  ${ds.shardLines.length} shards, ${ds.outcomeFiles.length} outcome files, ${mb(ds.outcomeBytes)}, ${int(ds.retried)} lines retried in round 2 (${secs(performance.now() - t)})\n`,
  );
  spawnSync('cat', ds.outcomeFiles, { stdio: 'ignore' }); // warm the page cache for both sides
  const cats: number[] = [];
  const catSyncs: number[] = [];
  const merges: ChildResult[] = [];
  for (let r = 0; r < rounds; r++) {
    cats.push(catBaseline(ds, false));
    catSyncs.push(catBaseline(ds, true));
    resetOutputs(ds);
    const m = await runJsonChild<ChildResult>(import.meta.filename, ['--child', datasetFile]);
    if (r === 0) verify(ds, m);
    else if (m.digest !== merges[0]!.digest) throw new Error('the merge wrote different outputs this round');
    merges.push(m);
    const line = `  round ${r + 1}: cat ${secs(cats[r]!)}, cat+fsync ${secs(catSyncs[r]!)}, mergeJob ${secs(m.ms)} (peak RSS ${m.rssMB.toFixed(0)} MB)`;
    process.stdout.write(`${line}\n`);
  }
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  return {
    lines,
    shards: ds.shardLines.length,
    bytes: ds.outcomeBytes,
    cat: median(cats),
    catSync: median(catSyncs),
    merge: median(merges.map((m) => m.ms)),
    rss: Math.max(...merges.map((m) => m.rssMB)),
    rssBefore: Math.max(...merges.map((m) => m.rssBeforeMB)),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      lines: { type: 'string', default: '1000000' },
      'shard-lines': { type: 'string', default: '50000' },
      'retry-rate': { type: 'string', default: '0.1' },
      rounds: { type: 'string', default: '3' },
      keep: { type: 'boolean' },
    },
  });
  if (values.child) return child(values.child);
  const sizes = values.lines.split(',').map(Number);
  const results = [];
  for (const lines of sizes) {
    results.push(
      await benchSize(
        lines,
        Number(values['shard-lines']),
        Number(values['retry-rate']),
        Number(values.rounds),
        values.keep === true,
      ),
    );
  }
  for (const r of results) {
    printTable(
      `Merge, ${int(r.lines)} lines (${r.shards} shards + a retry round, ${mb(r.bytes)} of outcomes)`,
      [
        ['cat of the outcome files (median)', secs(r.cat)],
        ['cat + fsync (median)', secs(r.catSync)],
        ['mergeJob (median)', secs(r.merge)],
        ['merge / cat', `${(r.merge / r.cat).toFixed(2)}x (target <= 3x)`],
        ['merge / (cat + fsync)', `${(r.merge / r.catSync).toFixed(2)}x`],
        [
          'merge peak RSS',
          `${r.rss.toFixed(0)} MB (target <= 256 MB; ${r.rssBefore.toFixed(0)} MB before the merge)`,
        ],
      ],
    );
  }
}

await main();
