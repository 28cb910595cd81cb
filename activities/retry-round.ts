// Builds the next round from the lines that failed retryably: lines of many shards are packed
// together by (model, thinking) into as few units as the limits allow, rather than one tiny batch
// per shard, by the same packer the planner uses for round 1. Each retry line keeps a pointer to its
// origin (shard, line index) in a sidecar.
import fsp from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { JobPaths } from '../common/job-types.ts';
import type { Limits } from '../common/profiles.ts';
import { estimateTokens, type UnitTokens } from '../common/tokens.ts';
import { ShardPacker } from '../planner/shards.ts';
import { AtomicWriter, fsyncPath, writeFileAtomic } from '../storage/atomic-file.ts';
import { outcomeFilesOf, roundBuildDir, roundDir, roundFiles, unitFile, workKey } from '../storage/layout.ts';
import { Stores, withWorkspace, type Workspace } from '../storage/workspace.ts';
import { readPlanManifest, writeRoundManifest } from '../storage/manifest.ts';
import { decodeOutcome } from '../storage/outcome-record.ts';
import { failIfDamaged } from './disk-errors.ts';
import { withHeartbeat } from './heartbeat.ts';
import { readLines, type Line } from './lines.ts';
import { isCancelledByUser } from './classify.ts';

export interface RetryRoundInput {
  paths: JobPaths;
  /** The round to build (2 or more). */
  round: number;
  maxAttempts: number;
  limits: Limits;
  shardCount: number;
  /** Return each unit's model and estimated tokens too (RetryRound), for admission by tokens. */
  withTokens?: boolean;
}

/** A packed retry round: lines, model and estimated input tokens per unit. */
export interface RetryRound {
  lines: number[];
  tokens: UnitTokens[];
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
  const out = new Set<number>();
  for (const { round, file } of await outcomeFilesOf(workDir, shard)) {
    if (round !== prev) continue;
    for await (const line of readLines(file)) {
      const { record: r } = decodeOutcome(line.text);
      if ((r.kind === 'retry' && r.attempt < maxAttempts) || isCancelledByUser(r.kind, r.error?.code))
        out.add(r.line);
    }
  }
  return out;
}

/** `stores`: the worker's (activities/stores.ts); a local-only one when absent (tests). */
export function retryRoundActivities(stores: Stores = new Stores()) {
  return {
    /**
     * Writes `round-<r>/` with packed retry units; returns the lines of each unit, with their
     * models and tokens when asked (`withTokens`; the bare list is what older job runs expect).
     */
    async prepareRetryRound(input: RetryRoundInput): Promise<number[] | RetryRound> {
      const units = await withHeartbeat(() =>
        withWorkspace(stores, input.paths.workDir, (ws) => packRetryRound(input, ws), 'retry-round'),
      ).catch(failIfDamaged);
      const lines = units.map((u) => u.lines);
      if (!input.withTokens) return lines;
      return {
        lines,
        tokens: units.map((u) => ({ model: u.group.split('\u0000')[0]!, tokens: estimateTokens(u.bytes) })),
      };
    },
  };
}

async function packRetryRound(input: RetryRoundInput, ws: Workspace): Promise<RetryUnit[]> {
  const workDir = ws.dir;
  const ctx = Context.current();
  await ws.pull(workKey.roundManifest(1));
  const manifest = await readPlanManifest(workDir);
  const prev = `/r${input.round - 1}-u`;
  const groupOf = new Map(manifest.shards.map((s) => [s.index, `${s.model}\u0000${String(s.thinking)}`]));
  const finalDir = roundDir(workDir, input.round);
  const tmpDir = roundBuildDir(workDir, input.round);
  await fsp.rm(tmpDir, { recursive: true, force: true });
  await fsp.mkdir(tmpDir, { recursive: true });
  const built = roundFiles(tmpDir);
  // On object storage each unit and its sidecar are committed as the unit closes and dropped from
  // scratch, which then holds the open units (one per model and thinking mode), not the round.
  const units = new RetryUnits(tmpDir, input.limits, async (index) => {
    await ws.pushAndDrop(workKey.unit(input.round, index), built.unit(index));
    await ws.pushAndDrop(workKey.origin(input.round, index), built.origin(index));
  });
  for (let shard = 0; shard < input.shardCount; shard++) {
    // On object storage, one shard's outcomes of the last round and its lines are in scratch at a time.
    await ws.pullPrefix(`${workKey.outcomes(shard)}/`, (k) => k.includes(prev));
    const wanted = await retryIndexes(workDir, shard, input.round - 1, input.maxAttempts);
    if (wanted.size === 0) {
      await ws.evict(workKey.outcomes(shard));
      continue;
    }
    await ws.pull(workKey.unit(1, shard));
    const group = groupOf.get(shard) ?? '';
    let i = 0;
    for await (const line of readLines(unitFile(workDir, 1, shard))) {
      if (wanted.has(i)) await units.add(group, line, shard, i);
      i++;
    }
    await ws.evict(workKey.outcomes(shard), workKey.unit(1, shard));
    ctx.heartbeat({ shard });
  }
  const done = await units.finish();
  // The manifest completes the folder; the folder's rename into place is kept by fsyncing its parent.
  await writeRoundManifest(roundFiles(tmpDir).manifest(), { round: input.round, units: done });
  await fsp.rm(finalDir, { recursive: true, force: true });
  await fsp.rename(tmpDir, finalDir);
  await fsyncPath(workDir);
  // The manifest last (the round's marker): on object storage the units are committed already, and
  // only it is left to push. Packing is deterministic over the committed outcomes, so a retried
  // attempt writes the same bytes under the same keys.
  await ws.pushPrefix(workKey.round(input.round), (k) => k === workKey.roundManifest(input.round));
  return done;
}

/**
 * Retry lines packed into units by the planner's ShardPacker (one open unit per group, closed when
 * the next line would pass the limits), each unit written to `dir` as its lines come, with its
 * `.origin` sidecar written when it closes.
 */
class RetryUnits {
  private readonly files: ReturnType<typeof roundFiles>;
  private readonly packer: ShardPacker;
  /** The packer's group number of each group key, in the order the keys first came. */
  private readonly groupNumbers = new Map<string, number>();
  private readonly groupKeys: string[] = [];
  private readonly open = new Map<number, OpenUnit>();
  private readonly done: RetryUnit[] = [];
  private readonly onClosed: (index: number) => Promise<void>;

  /** `onClosed`: called once a unit's file and sidecar are whole. */
  constructor(dir: string, limits: Limits, onClosed: (index: number) => Promise<void>) {
    this.files = roundFiles(dir);
    this.packer = new ShardPacker(limits);
    this.onClosed = onClosed;
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
      u = { writer: new AtomicWriter(this.files.unit(packed.index)), origins: [] };
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
    await writeFileAtomic(
      this.files.origin(index),
      Buffer.from(new Uint32Array(u.origins).buffer),
      'durable',
    );
    const group = this.groupKeys[this.packer.shards[index]!.group]!;
    this.done.push({ index, lines: u.writer.lines, bytes: u.writer.bytes, group });
    await this.onClosed(index);
  }
}
