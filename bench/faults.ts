// Throughput under faults benchmark: the same job with and without 10% retryable line
// failures (emulator `lineRetryableRate`), instant batches, 1 s polls. Counts the batches created
// and the bytes uploaded against the minimum: every line uploaded once per attempt it needs, packed
// into as few batches as the limits allow within each (model, thinking) group. For contrast, what
// resubmitting per original shard (no packing) would have cost. The job keeps its work directory so
// every uploaded unit file and its manifest can be measured afterwards.
//
//   npm run bench:faults                        # 1M lines, 20 shards, 10% retryable, + fault-free run
//   options: --lines 1000000, --shards 20, --rate 0.1, --no-baseline (skip the fault-free run),
//   --keep (keep bench/data/faults)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { JobSummary } from '../common/job-types.ts';
import { PROFILES } from '../common/profiles.ts';
import type { EmulatorStats } from '../emulator/index.ts';
import {
  originFile,
  outcomeFilesOf,
  roundDir,
  roundManifestFile,
  unitFile,
  workDirOf,
} from '../storage/layout.ts';
import { planManifestSchema, roundManifestSchema } from '../storage/manifest.ts';
import { decodeOutcome } from '../storage/outcome-record.ts';
import { ensureChatFile } from './gen-chat.ts';
import { startStack } from './stack.ts';
import { DATA, int, mb, printTable, secs } from './util.ts';

const ROOT = path.join(DATA, 'faults');

interface RunResult {
  summary: JobSummary;
  wallMs: number;
  stats: EmulatorStats;
  outDir: string;
}

async function runOnce(name: string, input: string, maxLines: number, rate: number): Promise<RunResult> {
  const stack = await startStack({
    dataDir: ROOT,
    faults: { seed: 7, validatingMs: 0, perLineMs: 0, finalizingMs: 0, lineRetryableRate: rate },
  });
  try {
    const jobId = `bench-faults-${name}-${Date.now()}`;
    const outName = `out-${name}`;
    fs.rmSync(path.join(ROOT, outName), { recursive: true, force: true });
    process.stdout.write(`running ${jobId} (lineRetryableRate ${rate}) ...\n`);
    const t0 = performance.now();
    const summary = await stack.runJob(jobId, input, outName, {
      pollIntervalMs: 1000,
      keepWorkDir: true,
      limits: { ...PROFILES.emulator.limits, maxLines },
    });
    const wallMs = performance.now() - t0;
    process.stdout.write(
      `  ${summary.status} in ${secs(wallMs)}: ${JSON.stringify(summary.lines)}, ${summary.rounds} rounds, ${summary.batches} batches\n`,
    );
    return { summary, wallMs, stats: await stack.stats(), outDir: path.join(ROOT, outName) };
  } finally {
    await stack.close();
  }
}

interface Round {
  round: number;
  units: number;
  lines: number;
  bytes: number;
  /** Fewest batches that could carry these lines: per group, ceil(lines / maxLines) (and bytes). */
  minUnits: number;
  /** Original shards the lines came from: batches if each shard resubmitted its own. */
  perShardUnits: number;
}

/** What each round uploaded, from the kept work directory. */
function rounds(workDir: string, maxLines: number, maxBytes: number): Round[] {
  const out: Round[] = [];
  const m1 = planManifestSchema.parse(JSON.parse(fs.readFileSync(roundManifestFile(workDir, 1), 'utf8')));
  const groupOf = new Map(m1.shards.map((s) => [s.index, `${s.model}\u0000${String(s.thinking)}`]));
  const minOf = (groups: Map<string, { lines: number; bytes: number }>) =>
    [...groups.values()].reduce(
      (a, g) => a + Math.max(Math.ceil(g.lines / maxLines), Math.ceil(g.bytes / maxBytes)),
      0,
    );
  const g1 = new Map<string, { lines: number; bytes: number }>();
  for (const s of m1.shards) {
    const g = g1.get(groupOf.get(s.index)!) ?? { lines: 0, bytes: 0 };
    g.lines += s.lines;
    g.bytes += s.bytes;
    g1.set(groupOf.get(s.index)!, g);
  }
  out.push({
    round: 1,
    units: m1.shards.length,
    lines: m1.shards.reduce((a, s) => a + s.lines, 0),
    bytes: m1.shards.reduce((a, s) => a + fs.statSync(unitFile(workDir, 1, s.index)).size, 0),
    minUnits: minOf(g1),
    perShardUnits: m1.shards.length,
  });
  for (let r = 2; fs.existsSync(roundDir(workDir, r)); r++) {
    const m = roundManifestSchema.parse(JSON.parse(fs.readFileSync(roundManifestFile(workDir, r), 'utf8')));
    const groups = new Map<string, { lines: number; bytes: number }>();
    const shards = new Set<number>();
    let bytes = 0;
    for (const u of m.units) {
      bytes += fs.statSync(unitFile(workDir, r, u.index)).size;
      const g = groups.get(u.group) ?? { lines: 0, bytes: 0 };
      g.lines += u.lines;
      g.bytes += u.bytes;
      groups.set(u.group, g);
      const origin = fs.readFileSync(originFile(workDir, r, u.index));
      for (let k = 0; k < origin.length; k += 8) shards.add(origin.readUInt32LE(k));
    }
    out.push({
      round: r,
      units: m.units.length,
      lines: m.units.reduce((a, u) => a + u.lines, 0),
      bytes,
      minUnits: minOf(groups),
      perShardUnits: shards.size,
    });
  }
  return out;
}

/**
 * Bytes the retried lines weigh in round 1: each retry round must upload at least these. Read from
 * the outcome files of the previous round (lines classified `retry`) and the round-1 shard files.
 */
async function retryBytesMinimum(
  workDir: string,
  shards: number,
  round: number,
  maxAttempts: number,
): Promise<{ lines: number; bytes: number }> {
  let lines = 0;
  let bytes = 0;
  for (let shard = 0; shard < shards; shard++) {
    const wanted = new Set<number>();
    for (const f of await outcomeFilesOf(workDir, shard)) {
      if (f.round !== round - 1) continue;
      for (const line of fs.readFileSync(f.file, 'utf8').split('\n')) {
        if (!line) continue;
        const { record } = decodeOutcome(line);
        if (record.kind === 'retry' && record.attempt < maxAttempts) wanted.add(record.line);
      }
    }
    if (wanted.size === 0) continue;
    const text = fs.readFileSync(unitFile(workDir, 1, shard));
    for (let i = 0, at = 0; at < text.length; i++) {
      const nl = text.indexOf(10, at);
      if (wanted.has(i)) {
        lines++;
        bytes += nl + 1 - at;
      }
      at = nl + 1;
    }
  }
  return { lines, bytes };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '1000000' },
      shards: { type: 'string', default: '20' },
      rate: { type: 'string', default: '0.1' },
      'no-baseline': { type: 'boolean' },
      keep: { type: 'boolean' },
    },
  });
  const lines = Number(values.lines);
  const rate = Number(values.rate);
  const maxLines = Math.ceil(lines / Number(values.shards));
  const { maxBytes } = PROFILES.emulator.limits;
  fs.mkdirSync(ROOT, { recursive: true });
  const inputName = `input-${lines}.jsonl`;
  const input = path.join(ROOT, inputName);
  ensureChatFile(input, lines);
  const clean = values['no-baseline'] ? undefined : await runOnce('clean', inputName, maxLines, 0);
  if (clean && !values.keep) fs.rmSync(clean.outDir, { recursive: true, force: true });
  const faulty = await runOnce('faulty', inputName, maxLines, rate);
  const workDir = workDirOf(faulty.outDir);
  const rs = rounds(workDir, maxLines, maxBytes);
  const mins: { lines: number; bytes: number }[] = [];
  for (const r of rs.slice(1)) mins.push(await retryBytesMinimum(workDir, rs[0]!.units, r.round, 3));
  if (!values.keep) fs.rmSync(ROOT, { recursive: true, force: true });

  const r1 = rs[0]!;
  const retryRounds = rs.slice(1);
  const batches = faulty.stats.batchesCreated;
  const uploaded = rs.reduce((a, r) => a + r.bytes, 0);
  const extraBatches = batches - r1.units;
  const minExtraBatches = retryRounds.reduce((a, r) => a + r.minUnits, 0);
  const perShardExtra = retryRounds.reduce((a, r) => a + r.perShardUnits, 0);
  const extraBytes = uploaded - r1.bytes;
  const minExtraBytes = mins.reduce((a, m) => a + m.bytes, 0);
  const dupBatches = Object.values(faulty.stats.batchesByInputFile).filter((n) => n > 1).length;
  printTable(
    `Faults: ${int(lines)} lines, ${r1.units} shards, lineRetryableRate ${rate}, 1 s polls, instant batches`,
    [
      ...rs.map((r, k): [string, string] => [
        `round ${r.round}`,
        `${int(r.lines)} lines, ${mb(r.bytes)} in ${r.units} batches (fewest possible ${r.minUnits}${r.round > 1 ? `; per-shard resubmission: ${r.perShardUnits}; lines that needed it: ${int(mins[k - 1]!.lines)}` : ''})`,
      ]),
      [
        'batches created',
        `${batches} (uploads ${faulty.stats.requests.upload ?? 0}; input files with >1 batch: ${dupBatches})`,
      ],
      [
        'extra batches vs fault-free',
        `${extraBatches} (minimum ${minExtraBatches}: ${(extraBatches / Math.max(1, minExtraBatches)).toFixed(2)}x; per-shard resubmission ${perShardExtra})`,
      ],
      [
        'extra bytes uploaded',
        `${mb(extraBytes)} = ${((100 * extraBytes) / r1.bytes).toFixed(1)}% of the input (minimum ${mb(minExtraBytes)}: ${(extraBytes / Math.max(1, minExtraBytes)).toFixed(3)}x)`,
      ],
      ['final', JSON.stringify(faulty.summary.lines)],
      ['wall time with faults', secs(faulty.wallMs)],
      ...(clean
        ? ([
            ['wall time fault-free (same run)', secs(clean.wallMs)],
            ['faults / fault-free', `${(faulty.wallMs / clean.wallMs).toFixed(2)}x`],
          ] as [string, string][])
        : []),
    ],
  );
}

await main();
