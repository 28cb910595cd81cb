// manifest.json: the plan's shards (file, group, counts, estimated input tokens, sha256), its limits,
// endpoint and input. Written last and durably (storage/manifest.ts): a plan that stops half way
// leaves none, and one that finished keeps it across a crash.
import { estimateTokens } from '../common/tokens.ts';
import { roundFiles, shardFileName } from '../storage/layout.ts';
import { writePlanManifestSync } from '../storage/manifest.ts';
import type { Group } from './groups.ts';
import type { PackedShard } from './shards.ts';
import type { PlanOptions, ShardInfo } from './types.ts';

/** The shard entries of the report and the manifest; sha256 '' for a shard not written. */
export function shardInfos(shards: PackedShard[], groups: Group[], shas: Map<number, string>): ShardInfo[] {
  return shards.map((s) => {
    const g = groups[s.group]!;
    return {
      index: s.index,
      file: shardFileName(s.index),
      model: g.model,
      thinking: g.thinking,
      lines: s.lines,
      bytes: s.bytes,
      inputTokens: estimateTokens(s.bytes),
      sha256: shas.get(s.index) ?? '',
    };
  });
}

/**
 * The manifest is the folder's commit marker: call it last, once the shards and sidecars are fsynced
 * and rejected.jsonl is in place; its folder fsync also keeps their names.
 */
export function writeManifest(outDir: string, shards: ShardInfo[], opts: PlanOptions): void {
  writePlanManifestSync(roundFiles(outDir).manifest(), {
    shards,
    limits: opts.limits,
    endpoint: opts.rewrite?.url ?? opts.endpoint,
    input: opts.input,
  });
}
