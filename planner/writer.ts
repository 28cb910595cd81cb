// Shard files on disk. Each shard is written to `<name>.tmp` and renamed when complete, with its
// sidecar `shard-NNNNN.lines` (one little-endian Uint32 per line: the line's 1-based number in the
// input, so results can be merged back into input order). Lines are copied into a buffer per open
// shard; at most `maxOpen` shards hold a file descriptor and a buffer at once (least recently used
// ones are flushed and reopened later), so memory stays bounded however many groups the input has.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const LITTLE_ENDIAN = os.endianness() === 'LE';

export const shardName = (index: number): string => `shard-${String(index).padStart(5, '0')}`;

/** Writes `text` to `file` through a temporary name, so a crash never leaves half a file. */
export function writeFileAtomic(file: string, text: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
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

interface OpenShard {
  index: number;
  fd: number;
  linesFd: number;
  /** Views of the lines to write (into the scan memory: written before it is reused). */
  iov: Uint8Array[];
  nums: Uint32Array;
  numsUsed: number;
  tick: number;
  /** The current run of lines adjacent in the source (one newline apart): one view for all. */
  runSrc: Uint8Array | undefined;
  runStart: number;
  runEnd: number;
}

const NEWLINE = Uint8Array.of(0x0a);

export class ShardFiles {
  private readonly dir: string;
  private readonly maxOpen: number;
  /** Open shards by index; at most maxOpen, the least recently used is released first. */
  private readonly open = new Map<number, OpenShard>();
  private readonly started = new Set<number>();
  private readonly onClosed: (index: number, file: string) => void;
  private last: OpenShard | undefined;
  private tick = 0;

  constructor(dir: string, onClosed: (index: number, file: string) => void, maxOpen = 16) {
    this.dir = dir;
    this.onClosed = onClosed;
    this.maxOpen = maxOpen;
  }

  /**
   * Removes what an earlier plan left in the directory (shards, manifest, rejected, temporaries):
   * the manifest is written last, so a plan that stops half way leaves none.
   */
  static clean(dir: string): void {
    for (const f of fs.readdirSync(dir)) {
      if (
        /^shard-\d{5,}\.(jsonl|lines)(\.tmp)?$/.test(f) ||
        /^(manifest\.json|rejected\.jsonl)(\.tmp)?$/.test(f)
      ) {
        fs.rmSync(path.join(dir, f), { force: true });
      }
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
      const base = path.join(this.dir, shardName(index));
      const flag = this.started.has(index) ? 'a' : 'w';
      this.started.add(index);
      s = {
        index,
        fd: fs.openSync(`${base}.jsonl.tmp`, flag),
        linesFd: fs.openSync(`${base}.lines.tmp`, flag),
        iov: [],
        nums: new Uint32Array(16384),
        numsUsed: 0,
        tick: 0,
        runSrc: undefined,
        runStart: 0,
        runEnd: 0,
      };
      this.open.set(index, s);
    }
    s.tick = ++this.tick;
    this.last = s;
    return s;
  }

  private flush(s: OpenShard): void {
    this.endRun(s);
    if (s.iov.length > 0) fs.writevSync(s.fd, s.iov);
    s.iov = [];
    this.flushNums(s);
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
    this.open.delete(s.index);
    if (this.last === s) this.last = undefined;
  }

  /** Queues the pending run of adjacent lines (with its newline) for writing. */
  private endRun(s: OpenShard): void {
    const src = s.runSrc;
    if (src === undefined) return;
    s.runSrc = undefined;
    const withNewline = src[s.runEnd] === 0x0a && s.runEnd < src.length;
    s.iov.push(
      new Uint8Array(src.buffer, src.byteOffset + s.runStart, s.runEnd - s.runStart + (withNewline ? 1 : 0)),
    );
    if (!withNewline) s.iov.push(NEWLINE);
    if (s.iov.length >= 1024) {
      fs.writevSync(s.fd, s.iov);
      s.iov = [];
    }
  }

  /**
   * Appends src[start, start+len) and a newline to shard `index`, from input line `line`. The bytes
   * must stay put until `endChunk`: lines are written from where they are, in runs.
   */
  append(index: number, src: Uint8Array, start: number, len: number, line: number): void {
    const s = this.get(index);
    if (s.runSrc === src && start === s.runEnd + 1 && src[s.runEnd] === 0x0a) {
      s.runEnd = start + len;
    } else {
      this.endRun(s);
      s.runSrc = src;
      s.runStart = start;
      s.runEnd = start + len;
    }
    if (s.numsUsed === s.nums.length) this.flushNums(s);
    s.nums[s.numsUsed++] = line;
  }

  /** Writes every pending line: the source memory is about to be reused. */
  endChunk(): void {
    for (const s of this.open.values()) {
      this.endRun(s);
      if (s.iov.length > 0) fs.writevSync(s.fd, s.iov);
      s.iov = [];
    }
  }

  /** Completes shard `index`: flush, close, rename into place, then `onClosed`. */
  close(index: number): void {
    const s = this.get(index);
    this.release(s);
    const base = path.join(this.dir, shardName(index));
    fs.renameSync(`${base}.lines.tmp`, `${base}.lines`);
    fs.renameSync(`${base}.jsonl.tmp`, `${base}.jsonl`);
    this.onClosed(index, `${base}.jsonl`);
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
