// Builds the next round from the lines that failed retryably: lines of many shards are packed
// together by (model, thinking) into as few units as the limits allow, rather than one tiny batch
// per shard. Each retry line keeps a pointer to its origin (shard, line index) in a sidecar.
import fsp from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { JobPaths } from '../common/job-types.ts';
import type { Limits } from '../common/profiles.ts';
import { estimateTokens, type UnitTokens } from '../common/tokens.ts';
import { AtomicWriter, fsyncPath, writeFileAtomic } from '../storage/atomic-file.ts';
import { outcomeFilesOf, roundBuildDir, roundDir, roundFiles, unitFile } from '../storage/layout.ts';
import { readPlanManifest, writeRoundManifest } from '../storage/manifest.ts';
import { decodeOutcome } from '../storage/outcome-record.ts';
import { failIfDamaged } from './disk-errors.ts';
import { withHeartbeat } from './heartbeat.ts';
import { readLines } from './lines.ts';
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
  index: number;
  writer: AtomicWriter;
  origins: number[];
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

export function retryRoundActivities() {
  return {
    /**
     * Writes `round-<r>/` with packed retry units; returns the lines of each unit, with their
     * models and tokens when asked (`withTokens`; the bare list is what older job runs expect).
     */
    async prepareRetryRound(input: RetryRoundInput): Promise<number[] | RetryRound> {
      const units = await withHeartbeat(() => packRetryRound(input)).catch(failIfDamaged);
      const lines = units.map((u) => u.lines);
      if (!input.withTokens) return lines;
      return {
        lines,
        tokens: units.map((u) => ({ model: u.group.split('\u0000')[0]!, tokens: estimateTokens(u.bytes) })),
      };
    },
  };
}

async function packRetryRound(
  input: RetryRoundInput,
): Promise<{ lines: number; bytes: number; group: string }[]> {
  const { workDir } = input.paths;
  const ctx = Context.current();
  const manifest = await readPlanManifest(workDir);
  const groupOf = new Map(manifest.shards.map((s) => [s.index, `${s.model}\u0000${String(s.thinking)}`]));
  const finalDir = roundDir(workDir, input.round);
  const tmpDir = roundBuildDir(workDir, input.round);
  await fsp.rm(tmpDir, { recursive: true, force: true });
  await fsp.mkdir(tmpDir, { recursive: true });
  const building = roundFiles(tmpDir);
  const open = new Map<string, OpenUnit>();
  const done: { index: number; lines: number; bytes: number; group: string }[] = [];
  let next = 0;
  const close = async (u: OpenUnit) => {
    await u.writer.commit();
    await writeFileAtomic(
      building.origin(u.index),
      Buffer.from(new Uint32Array(u.origins).buffer),
      'durable',
    );
    done.push({ index: u.index, lines: u.writer.lines, bytes: u.writer.bytes, group: u.group });
  };
  for (let shard = 0; shard < input.shardCount; shard++) {
    const wanted = await retryIndexes(workDir, shard, input.round - 1, input.maxAttempts);
    if (wanted.size === 0) continue;
    const group = groupOf.get(shard) ?? '';
    let i = 0;
    for await (const line of readLines(unitFile(workDir, 1, shard))) {
      if (wanted.has(i)) {
        let u = open.get(group);
        if (
          u &&
          (u.writer.lines + 1 > input.limits.maxLines || u.writer.bytes + line.length > input.limits.maxBytes)
        ) {
          await close(u);
          u = undefined;
        }
        if (!u) {
          u = {
            index: next++,
            writer: new AtomicWriter(building.unit(next - 1)),
            origins: [],
            group,
          };
          open.set(group, u);
        }
        await u.writer.writeLine(line.text);
        u.origins.push(shard, i);
      }
      i++;
    }
    ctx.heartbeat({ shard });
  }
  for (const u of open.values()) await close(u);
  done.sort((a, b) => a.index - b.index);
  // The manifest completes the folder; the folder's rename into place is kept by fsyncing its parent.
  await writeRoundManifest(building.manifest(), { round: input.round, units: done });
  await fsp.rm(finalDir, { recursive: true, force: true });
  await fsp.rename(tmpDir, finalDir);
  await fsyncPath(workDir);
  return done;
}
