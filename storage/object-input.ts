// A job's input read straight from object storage by the planner, with no copy on the worker's
// disk: its bytes front to back come from ranged GETs read ahead into a bounded window, and the
// rare out-of-order reads (an earlier line's custom_id, when two ids' hashes meet) from a ranged
// GET each. The planner reads synchronously, so a helper thread owns the S3 client and the main
// thread waits on shared memory for its answers (Atomics.wait); before each chunk the planner
// awaits `ready` instead, so that the read which follows finds its bytes at hand and the event loop
// (heartbeats, other activities) never waits on the network.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { InputBytes } from '../planner/input-bytes.ts';
import { s3Uri, type ObjectStoreOptions, type S3Location } from './s3.ts';
import type { FromThread, ThreadData, ToThread } from './object-input-thread.ts';

const MiB = 1024 * 1024;
/** Ranged GETs of 8 MiB, three read ahead: at most 32 MiB held, and no wait between chunks. */
export const INPUT_CHUNK = 8 * MiB;
const AHEAD = 3;
/** One answer's bytes at most; a longer read is asked in parts. */
const ANSWER_BYTES = INPUT_CHUNK;
/** How long a read waits for the helper before it gives up (the SDK retries within it). */
const ANSWER_MS = 5 * 60_000;

const THREAD_FILE = new URL(`./object-input-thread${path.extname(import.meta.filename)}`, import.meta.url);

/**
 * An object that cannot be read: `permanent` when the store refused it (missing, forbidden), which
 * trying again will not change.
 */
export class ObjectInputError extends Error {
  override name = 'ObjectInputError';
  readonly permanent: boolean;
  constructor(message: string, permanent: boolean) {
    super(message);
    this.permanent = permanent;
  }
}

export class ObjectInput implements InputBytes {
  readonly size: number;
  readonly uri: string;
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private readonly data: Uint8Array;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;
  private closed = false;

  /** `size` from the object's stat, taken when the job was claimed: a replaced object is noticed. */
  /** `read`: the GETs' size and how many are read ahead (tests make them small). */
  constructor(
    loc: S3Location,
    size: number,
    options: ObjectStoreOptions = {},
    read: { chunk?: number; ahead?: number } = {},
  ) {
    this.size = size;
    this.uri = s3Uri(loc);
    const control = new SharedArrayBuffer(5 * 4);
    const data = new SharedArrayBuffer(ANSWER_BYTES);
    this.state = new Int32Array(control);
    this.data = new Uint8Array(data);
    const workerData: ThreadData = {
      options: { ...options, ...(options.env ? { env: { ...options.env } } : {}) },
      loc,
      size,
      chunk: read.chunk ?? INPUT_CHUNK,
      ahead: read.ahead ?? AHEAD,
      control,
      data,
    };
    this.worker = new Worker(THREAD_FILE, { workerData });
    this.worker.on('message', (m: FromThread) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.failure) w?.reject(this.failed(m.failure.message, m.failure.status));
      else w?.resolve();
    });
    this.worker.on('error', (err: Error) => {
      this.failure ??= new ObjectInputError(`cannot read input ${this.uri}: ${err.message}`, false);
      for (const w of this.waiting.values()) w.reject(this.failure);
      this.waiting.clear();
    });
  }

  /** Ranged GETs the helper made: front to back, and for reads out of order. */
  get gets(): { inOrder: number; outOfOrder: number } {
    return { inOrder: Atomics.load(this.state, 4), outOfOrder: Atomics.load(this.state, 3) };
  }

  private failed(message: string, status: number): ObjectInputError {
    const permanent = status === 403 || status === 404;
    const hint =
      status === 404
        ? ': the object is gone (deleted or renamed since the job started); put it back and start the job again'
        : status === 403
          ? ": check the worker's AWS_* credentials and the bucket policy"
          : '';
    return new ObjectInputError(`cannot read input ${this.uri}: ${message}${hint}`, permanent);
  }

  ready(pos: number, len: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      // A GET that hangs fails the plan (to be retried) rather than hold it forever.
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject((this.failure ??= this.noAnswer()));
      }, ANSWER_MS);
      const settle =
        <A extends unknown[]>(f: (...a: A) => void) =>
        (...a: A) => {
          clearTimeout(timer);
          f(...a);
        };
      this.waiting.set(id, { resolve: settle(resolve), reject: settle(reject) });
      this.worker.postMessage({ op: 'ready', id, pos, len } satisfies ToThread);
    });
  }

  private noAnswer(): ObjectInputError {
    return new ObjectInputError(
      `cannot read input ${this.uri}: no answer from the store in ${ANSWER_MS / 1000} s`,
      false,
    );
  }

  readOn(buf: Uint8Array, off: number, len: number, pos: number): number {
    return this.read('on', buf, off, len, pos);
  }

  readAt(buf: Uint8Array, off: number, len: number, pos: number): number {
    return this.read('at', buf, off, len, pos);
  }

  private read(op: 'on' | 'at', buf: Uint8Array, off: number, len: number, pos: number): number {
    let done = 0;
    while (done < len && pos + done < this.size) {
      const n = this.ask(op, pos + done, Math.min(len - done, ANSWER_BYTES));
      buf.set(this.data.subarray(0, n), off + done);
      done += n;
      if (n === 0) break;
    }
    return done;
  }

  /** One read through the helper thread, waited for on the shared state. */
  private ask(op: 'on' | 'at', pos: number, len: number): number {
    if (this.failure) throw this.failure;
    const state = this.state;
    Atomics.store(state, 0, 0);
    this.worker.postMessage({ op, pos, len } satisfies ToThread);
    if (Atomics.wait(state, 0, 0, ANSWER_MS) === 'timed-out') throw (this.failure = this.noAnswer());
    if (Atomics.load(state, 0) === 2) {
      const message = Buffer.from(this.data.subarray(0, state[1])).toString('utf8');
      throw (this.failure = this.failed(message, state[2]!));
    }
    return state[1]!;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(new Error(`input ${this.uri} closed`));
    this.waiting.clear();
    void this.worker.terminate();
  }
}
