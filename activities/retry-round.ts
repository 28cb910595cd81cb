// Builds the next round from the lines that failed retryably: lines of many shards are packed
// together by (model, thinking) into as few units as the limits allow, rather than one tiny batch
// per shard, by the same packer the planner uses for round 1. Each retry line keeps a pointer to its origin (shard, line index) in a sidecar.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { JobPaths } from '../common/job-types.ts';
import type { Limits } from '../common/profiles.ts';
import { shardFileName } from '../common/keys.ts';
import { ShardPacker } from '../planner/shards.ts';
import { withHeartbeat } from './heartbeat.ts';
import { AtomicWriter, readJson, readLines, writeJsonAtomic, type Line } from './lines.ts';
import { isCancelledByUser } from './classify.ts';
import { decodeOutcome } from './outcome.ts';
import { outcomeDir, roundDir, unitFile } from './work-dir.ts';

export interface RetryRoundInput {
  paths: JobPaths;
  /** The round to build (2 or more). */
  round: number;
  maxAttempts: number;
  limits: Limits;
  shardCount: number;
}

interface ManifestShard {
  index: number;
  model: string;
  thinking: boolean | null;
}

interface OpenUnit {
  writer: AtomicWriter;
  /** (round-1 shard, line index) of each line written so far. */
  origins: number[];
}

/** One retry unit as round-<r>/manifest.json lists it. */
interface RetryUnit {
  index: number;
  lines: number;
  bytes: number;
  group: string;
}

/** Line indexes of shard `n` whose last outcome in round `prev` asks for another attempt. */
async function retryIndexes(
  workDir: string,
  shard: number,
  prev: number,
  maxAttempts: number,
): Promise<Set<number>> {
  const dir = outcomeDir(workDir, shard);
  const files = (await fsp.readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith(`r${prev}-`));
  const out = new Set<number>();
  for (const f of files.sort()) {
    for await (const line of readLines(path.join(dir, f))) {
      const { header } = decodeOutcome(line.text);
      if ((header.k === 'retry' && header.a < maxAttempts) || isCancelledByUser(header.k, header.e?.code))
        out.add(header.i);
    }
  }
  return out;
}

export function retryRoundActivities() {
  return {
    /** Writes `round-<r>/` with packed retry units; returns the lines of each unit. */
    async prepareRetryRound(input: RetryRoundInput): Promise<number[]> {
      return withHeartbeat(() => packRetryRound(input));
    },
  };
}

async function packRetryRound(input: RetryRoundInput): Promise<number[]> {
  const { workDir } = input.paths;
  const ctx = Context.current();
  const manifest = await readJson<{ shards: ManifestShard[] }>(
    path.join(roundDir(workDir, 1), 'manifest.json'),
  );
  const groupOf = new Map(manifest.shards.map((s) => [s.index, `${s.model}\u0000${String(s.thinking)}`]));
  const finalDir = roundDir(workDir, input.round);
  const tmpDir = `${finalDir}.tmp`;
  await fsp.rm(tmpDir, { recursive: true, force: true });
  await fsp.mkdir(tmpDir, { recursive: true });
  const units = new RetryUnits(tmpDir, input.limits);
  for (let shard = 0; shard < input.shardCount; shard++) {
    const wanted = await retryIndexes(workDir, shard, input.round - 1, input.maxAttempts);
    if (wanted.size === 0) continue;
    const group = groupOf.get(shard) ?? '';
    let i = 0;
    for await (const line of readLines(unitFile(workDir, 1, shard))) {
      if (wanted.has(i)) await units.add(group, line, shard, i);
      i++;
    }
    ctx.heartbeat({ shard });
  }
  const done = await units.finish();
  await writeJsonAtomic(path.join(tmpDir, 'manifest.json'), { round: input.round, units: done });
  await fsp.rm(finalDir, { recursive: true, force: true });
  await fsp.rename(tmpDir, finalDir);
  return done.map((d) => d.lines);
}

/**
 * Retry lines packed into units by the planner's ShardPacker (one open unit per group, closed when
 * the next line would pass the limits), each unit written to `dir` as its lines come, with its
 * `.origin` sidecar written when it closes.
 */
class RetryUnits {
  private readonly dir: string;
  private readonly packer: ShardPacker;
  /** The packer's group number of each group key, in the order the keys first came. */
  private readonly groupNumbers = new Map<string, number>();
  private readonly groupKeys: string[] = [];
  private readonly open = new Map<number, OpenUnit>();
  private readonly done: RetryUnit[] = [];

  constructor(dir: string, limits: Limits) {
    this.dir = dir;
    this.packer = new ShardPacker(limits);
  }

  /** Adds line `index` of round-1 shard `shard`, of `group` (model and thinking mode). */
  async add(group: string, line: Line, shard: number, index: number): Promise<void> {
    let g = this.groupNumbers.get(group);
    if (g === undefined) {
      g = this.groupKeys.length;
      this.groupNumbers.set(group, g);
      this.groupKeys.push(group);
    }
    // `line.length` counts the line's newline, as the packer's byte limit does.
    const packed = this.packer.add(g, line.length);
    if (this.packer.closed) await this.close(this.packer.closed.index);
    let u = this.open.get(packed.index);
    if (!u) {
      u = { writer: new AtomicWriter(path.join(this.dir, shardFileName(packed.index))), origins: [] };
      this.open.set(packed.index, u);
    }
    await u.writer.writeLine(line.text);
    u.origins.push(shard, index);
  }

  /** Closes the units still open; returns every unit, by index. */
  async finish(): Promise<RetryUnit[]> {
    for (const s of this.packer.openShards()) await this.close(s.index);
    return this.done.sort((a, b) => a.index - b.index);
  }

  private async close(index: number): Promise<void> {
    const u = this.open.get(index)!;
    this.open.delete(index);
    await u.writer.commit();
    const sidecar = path.join(this.dir, shardFileName(index).replace(/\.jsonl$/, '.origin'));
    await fsp.writeFile(sidecar, Buffer.from(new Uint32Array(u.origins).buffer));
    const group = this.groupKeys[this.packer.shards[index]!.group]!;
    this.done.push({ index, lines: u.writer.lines, bytes: u.writer.bytes, group });
  }
}
