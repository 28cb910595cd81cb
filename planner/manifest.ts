// manifest.json: the plan's shards (file, group, counts, sha256), its limits, endpoint and input.
// Written last, through a temporary name: a plan that stops half way leaves none.
import path from 'node:path';
import type { Group } from './groups.ts';
import type { PackedShard } from './shards.ts';
import type { PlanOptions, ShardInfo } from './types.ts';
import { shardName, writeFileAtomic } from './writer.ts';

/** The shard entries of the report and the manifest; sha256 '' for a shard not written. */
export function shardInfos(shards: PackedShard[], groups: Group[], shas: Map<number, string>): ShardInfo[] {
  return shards.map((s) => {
    const g = groups[s.group]!;
    return {
      index: s.index,
      file: `${shardName(s.index)}.jsonl`,
      model: g.model,
      thinking: g.thinking,
      lines: s.lines,
      bytes: s.bytes,
      sha256: shas.get(s.index) ?? '',
    };
  });
}

export function writeManifest(outDir: string, shards: ShardInfo[], opts: PlanOptions): void {
  const manifest = {
    shards,
    limits: opts.limits,
    endpoint: opts.rewrite?.url ?? opts.endpoint,
    input: opts.input,
  };
  writeFileAtomic(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}
