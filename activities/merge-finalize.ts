// Merge step 1 (merge.ts): per original shard, each line's last outcome in shard order, written to
// `final/shard-N.jsonl`. Memory is bounded by the shard's size (--max-lines, --max-bytes) and by
// mergeShardBudgetBytes for outcome files read whole (into one reused arena); past the budget they
// are indexed in chunks and each line read back where it lies. A shard whose one outcome file is
// already complete and in order is hard-linked instead of copied. `final/` files are not fsynced
// (they are rebuilt from the outcomes, which are): one is reused only if it holds exactly its
// shard's lines.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { tempNameFor } from '../storage/atomic-file.ts';
import { finalFile, outcomeFilesOf, unitFile } from '../storage/layout.ts';
import { encodeOutcome, outcomeLineAt, type OutcomeRecord } from '../storage/outcome-record.ts';
import { ByteWriter } from './byte-writer.ts';
import type { LineError } from './classify.ts';
import { countNewlines, customIdOf, readByteLines, type ByteLine } from './lines.ts';

/** How the job ended: lines that never got an outcome are reported by it. */
export type JobEnd = 'completed' | 'cancelled' | 'failed';

export const READ_CHUNK = 1 << 20;
const NL = 10;

type OnLine = (buf: Buffer, start: number, end: number, fileOffset: number) => void;

/** Calls `onLine` for each non-empty line of buf[0, end) ending in a newline; returns where the rest starts. */
function eachLine(buf: Buffer, end: number, base: number, onLine: OnLine): number {
  let start = 0;
  for (let nl = buf.indexOf(NL, start); nl !== -1 && nl < end; nl = buf.indexOf(NL, start)) {
    if (nl > start) onLine(buf, start, nl, base + start);
    start = nl + 1;
  }
  return start;
}

/** Calls `onLine` for each non-empty line of a file, reading it in chunks. */
async function forEachLine(file: string, onLine: OnLine): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    let buf = Buffer.allocUnsafe(READ_CHUNK);
    let have = 0;
    let base = 0;
    for (;;) {
      if (have === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, have, buf.length - have, base + have);
      have += bytesRead;
      const start = eachLine(buf, have, base, onLine);
      if (bytesRead === 0) {
        if (have > start) onLine(buf, start, have, base + start);
        return;
      }
      buf.copy(buf, 0, start, have);
      have -= start;
      base += start;
    }
  } finally {
    await fh.close();
  }
}

/** One buffer for every shard's outcome files, so step 1 leaves no garbage per shard. */
export interface Arena {
  buf: Buffer | undefined;
}

/** Reads the files back to back into the arena (grown to `total` bytes): one view per file. */
function readWhole(files: string[], arena: Arena, total: number): Buffer[] {
  if (!arena.buf || arena.buf.length < total) {
    // Grown by half again at least, so shards of rising size do not each leave a buffer behind.
    arena.buf = Buffer.allocUnsafe(Math.max(total, Math.floor((arena.buf?.length ?? 0) * 1.5)));
  }
  const views: Buffer[] = [];
  let at = 0;
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      const start = at;
      for (let n; at < total && (n = fs.readSync(fd, arena.buf, at, total - at, null)) > 0;) at += n;
      views.push(arena.buf.subarray(start, at));
    } finally {
      fs.closeSync(fd);
    }
  }
  return views;
}

/** A `final/` file left by an earlier attempt is reused only if it holds exactly `lines` lines. */
async function isWholeFinal(file: string, lines: number): Promise<boolean> {
  let count = 0;
  let last = NL;
  try {
    for await (const chunk of fs.createReadStream(file, { highWaterMark: READ_CHUNK })) {
      const b = chunk as Buffer;
      count += countNewlines(b);
      if (b.length > 0) last = b[b.length - 1]!;
    }
  } catch {
    return false;
  }
  return count === lines && last === NL;
}

function missingOutcome(i: number, cid: string, jobStatus: JobEnd, reason?: LineError): string {
  const record: OutcomeRecord = {
    line: i,
    kind: 'permanent',
    attempt: 0,
    customId: cid,
    error:
      jobStatus === 'cancelled'
        ? {
            code: 'batch_cancelled',
            message: 'the job was cancelled before this line was submitted',
            status_code: null,
          }
        : (reason ?? {
            code: 'not_processed',
            message: 'the job ended before this line was processed',
            status_code: null,
          }),
  };
  return encodeOutcome(record, '');
}

/**
 * Every line's only outcome, already in shard order: the outcome file is the final file, linked
 * rather than copied. False where the file system has no hard links (the caller copies).
 */
async function linkInPlace(from: string, to: string): Promise<boolean> {
  const tmp = tempNameFor(to);
  try {
    await fsp.link(from, tmp);
  } catch {
    return false;
  }
  await fsp.rename(tmp, to);
  return true;
}

/** Step 1: `final/shard-N.jsonl` with each line's last outcome, in shard order. */
export async function finalizeShard(
  workDir: string,
  shard: number,
  lines: number,
  jobStatus: JobEnd,
  budget: number,
  arena: Arena,
  /** Why lines without an outcome have none (their shard's failure), when known. */
  reason?: LineError,
): Promise<void> {
  const target = finalFile(workDir, shard);
  if (fs.existsSync(target)) {
    if (await isWholeFinal(target, lines)) return;
    await fsp.rm(target, { force: true });
  }
  const files = (await outcomeFilesOf(workDir, shard)).map((f) => f.file);
  const fileOf = new Int32Array(lines).fill(-1);
  const offset = new Float64Array(lines);
  const length = new Int32Array(lines);
  let totalBytes = 0;
  for (const f of files) totalBytes += (await fsp.stat(f)).size;
  // Within the budget the outcome files are read once, whole; past it they are indexed in chunks
  // and each line is read back where it lies.
  const inMemory = totalBytes <= budget ? readWhole(files, arena, totalBytes) : null;
  let inOrder = files.length === 1;
  let seen = 0;
  for (let f = 0; f < files.length; f++) {
    const onLine: OnLine = (buf, start, end, at) => {
      const i = outcomeLineAt(buf, start, end);
      if (i >= lines) throw new Error(`outcome for line ${i} of shard ${shard}, which has ${lines} lines`);
      if (i !== seen++) inOrder = false;
      fileOf[i] = f;
      offset[i] = at;
      length[i] = end - start;
    };
    if (!inMemory) await forEachLine(files[f]!, onLine);
    else {
      const buf = inMemory[f]!;
      const rest = eachLine(buf, buf.length, 0, onLine);
      if (rest < buf.length) onLine(buf, rest, buf.length, rest);
    }
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  if (inOrder && seen === lines && (await linkInPlace(files[0]!, target))) return;
  // Later rounds overwrote earlier ones above, so each line now points at its last outcome.
  const handles = inMemory ? [] : await Promise.all(files.map((f) => fsp.open(f, 'r')));
  const ids = fileOf.includes(-1) ? readByteLines(unitFile(workDir, 1, shard)) : null;
  const w = new ByteWriter(target, 'rebuildable');
  let scratch = Buffer.allocUnsafe(64 * 1024);
  try {
    for (let i = 0; i < lines; i++) {
      const idLine = ids ? ((await ids.next()).value as ByteLine | undefined) : undefined;
      const f = fileOf[i]!;
      let wait: Promise<void> | undefined;
      if (f < 0) {
        const cid = idLine ? customIdOf(idLine.bytes) : '';
        wait = w.text(missingOutcome(i, cid, jobStatus, reason));
      } else if (inMemory) {
        wait = w.line(inMemory[f]!, offset[i]!, offset[i]! + length[i]!);
      } else {
        if (scratch.length < length[i]!) scratch = Buffer.allocUnsafe(length[i]!);
        await handles[f]!.read(scratch, 0, length[i], offset[i]);
        wait = w.line(scratch, 0, length[i]!);
      }
      if (wait) await wait;
    }
    await w.commit();
  } catch (err) {
    await w.abort();
    throw err;
  } finally {
    await Promise.all(handles.map((h) => h.close()));
  }
}
