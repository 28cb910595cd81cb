// How one plan's scan memory is laid out, from the configuration and the input's size (never from
// its content): how many scan threads, how many chunk slots of what size, and the open shards' write
// buffers after the slots (writer.ts). The whole must stay under 1 GiB (simd.ts: indexes carry a
// flag in bit 30).
import os from 'node:os';
import { formatBytes } from '../common/units.ts';
import { InputError } from './errors.ts';
import type { PlanTuning } from './types.ts';
import { ShardFiles } from './writer.ts';

const MiB = 1024 * 1024;
const PAGE = 64 * 1024;

export interface MemoryLayout {
  /** Scan threads; 0 checks on the main thread. */
  threads: number;
  /** Bytes of one chunk slot: holds a chunk, and any line that may be accepted. */
  slotBytes: number;
  slots: number;
  /** Shard files open at once, and the bytes of their write buffers (0 when validating only). */
  maxOpen: number;
  arenaBytes: number;
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * The layout for an input of `size` bytes and about `expectedLines` lines whose lines may reach
 * `maxLineBytes`; an InputError when such lines cannot fit (`configuredLineBytes` is what the
 * user asked for, named in the message). `keyed`: the scan threads also compute each line's request
 * key and look it up in the answer store (reuse).
 */
export function layOutMemory(
  size: number,
  expectedLines: number,
  maxLineBytes: number,
  configuredLineBytes: number,
  writing: boolean,
  tuning: PlanTuning,
  keyed = false,
): MemoryLayout {
  // Scan threads for inputs worth them; one only past 2.5M lines, where the id table needs the room
  // (peak RSS stays under 256 MB at 10M lines), unless the lines are keyed: hashing and looking up
  // every line is then most of a plan's work, and a second thread halves it (at 10M lines with 50%
  // reuse: bench/README.md, Reuse) for a few slots more.
  const threads =
    tuning.workers ??
    (size <= 16 * MiB
      ? 0
      : Math.max(1, Math.min(expectedLines > 2_500_000 && !keyed ? 1 : 2, os.availableParallelism())));
  // A slot holds a chunk and must hold any line that may be accepted (plus CR, BOM, newline).
  const slotBytes = roundUp(Math.max(tuning.chunkBytes ?? 4 * MiB, maxLineBytes + PAGE), PAGE);
  // Spare slots let the scan threads run ahead of the main thread; with one scan thread (large
  // inputs) the memory goes to the id table instead.
  let slots = threads >= 2 ? threads + 3 : Math.max(2, threads + 1);
  // After the slots, the open shards' write buffers (writer.ts).
  const maxOpen = tuning.maxOpenShards ?? 16;
  const arenaBytes = writing ? ShardFiles.arenaBytes(maxOpen) : 0;
  const fits = (): boolean => slots * slotBytes + arenaBytes < 1024 * MiB;
  while (slots > 2 && !fits()) slots--;
  if (!fits()) {
    throw new InputError(
      `--max-line-bytes ${formatBytes(configuredLineBytes)} is over what one plan can hold (about 500 MB)`,
    );
  }
  return { threads, slotBytes, slots, maxOpen, arenaBytes };
}
