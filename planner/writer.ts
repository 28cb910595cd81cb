// Shard files on disk. Each shard is written to `<name>.tmp` and renamed when complete, with its
// sidecar `shard-NNNNN.lines` (one little-endian Uint32 per line: the line's 1-based number in the
// input, so results can be merged back into input order). Lines are copied into a buffer per open
// shard; at most `maxOpen` shards hold a file descriptor and a buffer at once (least recently used
// ones are flushed and reopened later), so memory stays bounded however many groups the input has.
// The buffers live in the scan memory itself (`ShardArena`), so a line is copied there by wasm's
// `memory.copy` (simd.ts says why not by JavaScript) and written in 256 KiB blocks; the kernel
// takes those from shared wasm memory as fast as from a plain Buffer (914 MB into 20 files, three
// runs each: 0.18-0.19 s vs 0.19-0.21 s of system time).
// Why copy rather than `writev` straight from the scan memory (in runs of adjacent lines): in the
// kernel, ~1M small iovecs cost far more than the copy. A/B on the 1M-line
// bench input, four runs each: main-thread system time 1.5-1.75 s with writev, 0.5-0.77 s with the
// copy (+0.2-0.4 s user); plan 2.6-2.9 s vs 2.0-2.5 s.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fsyncPath } from '../storage/atomic-file.ts';
import { isPlanOutputName, roundFiles } from '../storage/layout.ts';
import type { CopyFn } from './simd.ts';

const LITTLE_ENDIAN = os.endianness() === 'LE';

/**
 * Starts an fsync of a finished shard or sidecar (on the thread pool, while planning goes on); its
 * failure is kept for whoever awaits it, never left unhandled meanwhile.
 */
export function syncInBackground(file: string): Promise<void> {
  const p = fsyncPath(file);
  p.catch(() => undefined);
  return p;
}

let hashBuffer: Buffer | undefined;

/** sha256 of a file, read in 256 KiB blocks (one buffer for every call). */
export function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const buf = (hashBuffer ??= Buffer.allocUnsafe(1 << 18));
  const fd = fs.openSync(file, 'r');
  try {
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Where open shards keep their lines: `maxOpen` blocks of SHARD_BUFFER bytes of `u8` from `base`. */
export interface ShardArena {
  u8: Uint8Array;
  base: number;
  copy: CopyFn['copy'];
}

interface OpenShard {
  index: number;
  fd: number;
  linesFd: number;
  /** Offset in the arena of this shard's buffer: lines not yet written. */
  buf: number;
  used: number;
  nums: Uint32Array;
  numsUsed: number;
  tick: number;
}

const NEWLINE = Uint8Array.of(0x0a);
export const SHARD_BUFFER = 256 * 1024;

export class ShardFiles {
  private readonly dir: string;
  private readonly maxOpen: number;
  /** Open shards by index; at most maxOpen, the least recently used is released first. */
  private readonly open = new Map<number, OpenShard>();
  private readonly started = new Set<number>();
  private readonly onClosed: (index: number, file: string, lineNumbers: string) => void;
  private last: OpenShard | undefined;
  private tick = 0;
  private readonly arena: ShardArena;
  /** Arena blocks no open shard holds. */
  private readonly spare: number[] = [];

  /** `arena` has room for `maxOpen` buffers (ShardFiles.arenaBytes). */
  constructor(
    dir: string,
    arena: ShardArena,
    onClosed: (index: number, file: string, lineNumbers: string) => void,
    maxOpen = 16,
  ) {
    this.dir = dir;
    this.arena = arena;
    this.onClosed = onClosed;
    this.maxOpen = maxOpen;
    for (let k = maxOpen - 1; k >= 0; k--) this.spare.push(arena.base + k * SHARD_BUFFER);
  }

  static arenaBytes(maxOpen: number): number {
    return maxOpen * SHARD_BUFFER;
  }

  /**
   * Removes what an earlier plan left in the directory (shards, manifest, rejected, temporaries):
   * the manifest is written last, so a plan that stops half way leaves none.
   */
  static clean(dir: string): void {
    for (const f of fs.readdirSync(dir)) {
      if (isPlanOutputName(f.replace(/\.tmp(-[\w-]+)?$/, ''))) fs.rmSync(path.join(dir, f), { force: true });
    }
  }

  private get(index: number): OpenShard {
    const last = this.last;
    if (last !== undefined && last.index === index) return last;
    let s = this.open.get(index);
    if (!s) {
      if (this.open.size >= this.maxOpen) {
        let lru: OpenShard | undefined;
        for (const o of this.open.values()) if (!lru || o.tick < lru.tick) lru = o;
        this.release(lru!);
      }
      const flag = this.started.has(index) ? 'a' : 'w';
      this.started.add(index);
      s = {
        index,
        fd: fs.openSync(`${this.shardFile(index)}.tmp`, flag),
        linesFd: fs.openSync(`${this.linesFile(index)}.tmp`, flag),
        buf: this.spare.pop()!,
        used: 0,
        nums: new Uint32Array(16384),
        numsUsed: 0,
        tick: 0,
      };
      this.open.set(index, s);
    }
    s.tick = ++this.tick;
    this.last = s;
    return s;
  }

  private flush(s: OpenShard): void {
    this.flushLines(s);
    this.flushNums(s);
  }

  private flushLines(s: OpenShard): void {
    if (s.used > 0) fs.writeSync(s.fd, this.arena.u8, s.buf, s.used);
    s.used = 0;
  }

  private flushNums(s: OpenShard): void {
    if (s.numsUsed === 0) return;
    const bytes = Buffer.from(s.nums.buffer, 0, s.numsUsed * 4);
    // The sidecar is little-endian on every platform.
    fs.writeSync(s.linesFd, LITTLE_ENDIAN ? bytes : Buffer.from(bytes).swap32());
    s.numsUsed = 0;
  }

  private release(s: OpenShard): void {
    this.flush(s);
    fs.closeSync(s.fd);
    fs.closeSync(s.linesFd);
    this.spare.push(s.buf);
    this.open.delete(s.index);
    if (this.last === s) this.last = undefined;
  }

  /** Appends src[start, start+len) and a newline to shard `index`, from input line `line`. */
  append(index: number, src: Uint8Array, start: number, len: number, line: number): void {
    const s = this.get(index);
    if (s.used + len + 1 > SHARD_BUFFER) this.flushLines(s);
    const arena = this.arena;
    if (len + 1 > SHARD_BUFFER) {
      // Longer than the buffer (lines may reach the 6 MB limit): written from where it is.
      fs.writeSync(s.fd, src, start, len);
      fs.writeSync(s.fd, NEWLINE);
    } else if (src === arena.u8) {
      s.used = arena.copy(s.buf + s.used, start, len) - s.buf;
    } else {
      // A rewritten line (dry run, --thinking), from its own buffer.
      arena.u8.set(src.subarray(start, start + len), s.buf + s.used);
      s.used += len;
      arena.u8[s.buf + s.used++] = 0x0a;
    }
    if (s.numsUsed === s.nums.length) this.flushNums(s);
    s.nums[s.numsUsed++] = line;
  }

  private shardFile(index: number): string {
    return roundFiles(this.dir).unit(index);
  }

  private linesFile(index: number): string {
    return roundFiles(this.dir).lineNumbers(index);
  }

  /** Completes shard `index`: flush, close, rename into place, then `onClosed`. */
  close(index: number): void {
    const s = this.get(index);
    this.release(s);
    const lines = this.linesFile(index);
    const shard = this.shardFile(index);
    fs.renameSync(`${lines}.tmp`, lines);
    fs.renameSync(`${shard}.tmp`, shard);
    this.onClosed(index, shard, lines);
  }

  /** Closes every descriptor without completing anything (on error). */
  abandon(): void {
    this.last = undefined;
    for (const s of this.open.values()) {
      fs.closeSync(s.fd);
      fs.closeSync(s.linesFd);
    }
    this.open.clear();
  }
}
