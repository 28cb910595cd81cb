// The helper thread of an object input (object-input.ts): it owns the S3 client and answers the
// planner's reads, which are synchronous, through shared memory. Reads front to back are served
// from a window of ranged GETs read ahead of them; reads out of order (an earlier line's id) from
// the window when they fall inside it, else by one ranged GET of their own.
import { parentPort, workerData } from 'node:worker_threads';
import { ObjectStore, type ObjectStoreOptions, type S3Location } from './s3.ts';

export interface ThreadData {
  options: ObjectStoreOptions;
  loc: S3Location;
  size: number;
  /** Bytes per ranged GET of the front-to-back read. */
  chunk: number;
  /** Chunks fetched past the one being read. */
  ahead: number;
  /**
   * Int32 [state, count or message length, HTTP status, GETs out of order, GETs front to back];
   * state 0 = asked, 1 = answered, 2 = failed.
   */
  control: SharedArrayBuffer;
  /** Where an answer's bytes (or a failure's message) go. */
  data: SharedArrayBuffer;
}

export type ToThread =
  { op: 'on' | 'at'; pos: number; len: number } | { op: 'ready'; id: number; pos: number; len: number };

export type FromThread = { id: number; failure?: { message: string; status: number } };

const ATTEMPTS = 3;
/** Blocks of at most 1 MiB, eight kept, for reads out of order: a GET's wait, not its size, costs. */
const EARLIER_BLOCKS = 8;
const EARLIER_BYTES = 1024 * 1024;

const { options, loc, size, chunk, ahead, control, data } = workerData as ThreadData;
const store = new ObjectStore(options);
const state = new Int32Array(control);
const out = new Uint8Array(data);
/** Chunks of the front-to-back read by index: the one being read and those read ahead. */
const window = new Map<number, Promise<Buffer>>();

/** A failure the planner reports: the store's message and its HTTP status (0: none). */
class ReadFailure extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

const statusOf = (err: unknown): number =>
  (err as { cause?: { $metadata?: { httpStatusCode?: number } } }).cause?.$metadata?.httpStatusCode ?? 0;

/** Bytes [start, end) of the object; a failed GET is asked again unless the server refused it. */
async function fetchRange(start: number, end: number): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    try {
      const parts: Buffer[] = [];
      for await (const b of await store.read(loc, { start, end: end - 1 })) parts.push(b as Buffer);
      const got = Buffer.concat(parts);
      if (got.length !== end - start)
        throw new ReadFailure(`got ${got.length} bytes at ${start}, not ${end - start}: was it replaced?`, 0);
      return got;
    } catch (err) {
      const status = err instanceof ReadFailure ? err.status : statusOf(err);
      if (attempt >= ATTEMPTS || (status >= 400 && status < 500))
        throw new ReadFailure((err as Error).message, status);
    }
  }
}

function chunkAt(index: number): Promise<Buffer> {
  let p = window.get(index);
  if (!p) {
    Atomics.add(state, 4, 1);
    p = fetchRange(index * chunk, Math.min(size, (index + 1) * chunk));
    // Kept until a read needs it; a failure is reported by that read.
    p.catch(() => undefined);
    window.set(index, p);
  }
  return p;
}

/** Moves the window to `pos`: chunks behind it are dropped, the next `ahead` ones fetched. */
function advance(pos: number): void {
  const first = Math.floor(pos / chunk);
  for (const k of window.keys()) if (k < first) window.delete(k);
  for (let k = first; k <= first + ahead && k * chunk < size; k++) void chunkAt(k);
}

/** Copies bytes [pos, pos + len) of the window into `out`, fetching what it lacks. */
async function fromWindow(pos: number, len: number): Promise<number> {
  const end = Math.min(size, pos + len);
  let at = pos;
  while (at < end) {
    const k = Math.floor(at / chunk);
    const b = await chunkAt(k);
    at += b.copy(out, at - pos, at - k * chunk, Math.min(b.length, end - k * chunk));
  }
  return end - pos;
}

/**
 * Blocks of earlier bytes fetched for reads out of order, most recent last: duplicates come in runs
 * (a file appended to itself repeats thousands of lines in order), so one GET serves many re-reads.
 */
const earlier = new Map<number, Promise<Buffer>>();
const block = Math.min(chunk, EARLIER_BYTES);

function earlierBlock(index: number): Promise<Buffer> {
  let p = earlier.get(index);
  if (p) earlier.delete(index);
  else {
    Atomics.add(state, 3, 1);
    p = fetchRange(index * block, Math.min(size, (index + 1) * block));
    p.catch(() => undefined);
  }
  earlier.set(index, p);
  if (earlier.size > EARLIER_BLOCKS) earlier.delete(earlier.keys().next().value!);
  return p;
}

/** Out of order: from the window when it holds the bytes, else from blocks of their own. */
async function outOfOrder(pos: number, len: number): Promise<number> {
  const end = Math.min(size, pos + len);
  if (end <= pos) return 0;
  // Every block the read spans is asked for at once, then copied in order.
  const pieces: { from: number; bytes: Promise<Buffer> }[] = [];
  for (let at = pos; at < end;) {
    const k = Math.floor(at / chunk);
    const ahead = window.get(k);
    const piece = ahead
      ? { from: k * chunk, bytes: ahead }
      : { from: Math.floor(at / block) * block, bytes: earlierBlock(Math.floor(at / block)) };
    pieces.push(piece);
    at = piece.from + (ahead ? chunk : block);
  }
  let at = pos;
  for (const { from, bytes } of pieces) {
    const b = await bytes;
    at += b.copy(out, at - pos, at - from, Math.min(b.length, end - from));
  }
  return end - pos;
}

function answer(result: Promise<number>): void {
  result.then(
    (n) => {
      state[1] = n;
      Atomics.store(state, 0, 1);
      Atomics.notify(state, 0);
    },
    (err: unknown) => {
      const f = err instanceof ReadFailure ? err : new ReadFailure(String(err), 0);
      const text = Buffer.from(f.message.slice(0, 4000));
      text.copy(out, 0);
      state[1] = text.length;
      state[2] = f.status;
      Atomics.store(state, 0, 2);
      Atomics.notify(state, 0);
    },
  );
}

parentPort!.on('message', (m: ToThread) => {
  if (m.op === 'ready') {
    advance(m.pos);
    const end = Math.min(size, m.pos + m.len);
    const needed: Promise<Buffer>[] = [];
    for (let k = Math.floor(m.pos / chunk); k * chunk < end; k++) needed.push(chunkAt(k));
    Promise.all(needed).then(
      () => parentPort!.postMessage({ id: m.id } satisfies FromThread),
      (err: unknown) => {
        const f = err instanceof ReadFailure ? err : new ReadFailure(String(err), 0);
        parentPort!.postMessage({
          id: m.id,
          failure: { message: f.message, status: f.status },
        } satisfies FromThread);
      },
    );
  } else if (m.op === 'on') {
    advance(m.pos);
    answer(fromWindow(m.pos, m.len));
  } else answer(outOfOrder(m.pos, m.len));
});
