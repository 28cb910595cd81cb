// Packing accepted lines into shards: one open shard per group (model, thinking mode), closed when
// the next line would pass max lines or max bytes. Lines keep input order inside a shard, and shard
// indexes follow each shard's first line, so the same input always gives the same plan. Retry
// rounds pack their lines with it too (activities/retry-round.ts).
import type { Limits } from '../common/profiles.ts';

export interface PackedShard {
  index: number;
  group: number;
  lines: number;
  /** Sum of line bytes, newlines included. */
  bytes: number;
}

export class ShardPacker {
  readonly shards: PackedShard[] = [];
  private readonly open: (PackedShard | undefined)[] = [];
  private readonly limits: Limits;
  /** The shard the last `add` closed to make room, or undefined. */
  closed: PackedShard | undefined;

  constructor(limits: Limits) {
    this.limits = limits;
  }

  /** Places a line of `bytes` (newline included) of `group`; returns its shard. */
  add(group: number, bytes: number): PackedShard {
    this.closed = undefined;
    let shard = this.open[group];
    if (shard && (shard.lines + 1 > this.limits.maxLines || shard.bytes + bytes > this.limits.maxBytes)) {
      this.closed = shard;
      shard = undefined;
    }
    if (!shard) {
      shard = { index: this.shards.length, group, lines: 0, bytes: 0 };
      this.shards.push(shard);
      this.open[group] = shard;
    }
    shard.lines++;
    shard.bytes += bytes;
    return shard;
  }

  /** Shards still open (to be closed at the end of the input). */
  openShards(): PackedShard[] {
    return this.open.filter((s): s is PackedShard => s !== undefined);
  }
}
