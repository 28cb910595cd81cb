// The planner's threads: the main thread reads the input into slots of a shared memory and keeps
// order, uniqueness and the shard files; `n` workers check chunks (the CPU-heavy part) and hash
// finished shards. With n = 0 everything runs inline, for small inputs and tests.
import fs from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { makeChunkScanner, type ChunkPart } from './chunk.ts';
import type { LineRules } from './line.ts';
import { scanFnsFor, type ScanMemory, type WasmModule } from './simd.ts';
import type { FromWorker, ToWorker } from './worker.ts';
import { sha256File } from './writer.ts';

// worker.ts beside the sources, worker.js in a build (which needs no stripping).
const WORKER_FILE = fileURLToPath(new URL(`./worker${path.extname(import.meta.filename)}`, import.meta.url));
let workerUrl: URL | undefined;

/**
 * The worker's code as plain JavaScript, its relative imports inlined as data: URLs. A thread that
 * loads .ts files loads Node's type stripper too (~13 MB of RSS per thread); this strips once, here.
 * Falls back to the .ts file where Node has no `stripTypeScriptTypes`; a build's worker.js loads as is.
 */
function workerSource(): URL {
  if (workerUrl) return workerUrl;
  const strip = (module as { stripTypeScriptTypes?: (code: string) => string }).stripTypeScriptTypes;
  if (!strip || WORKER_FILE.endsWith('.js')) return (workerUrl = pathToFileURL(WORKER_FILE));
  const urls = new Map<string, string>();
  const load = (file: string): string => {
    const known = urls.get(file);
    if (known) return known;
    // stripTypeScriptTypes warns that it is experimental: once per process, and not ours to show.
    const warnings = Object.getOwnPropertyDescriptor(process, 'emitWarning')!;
    process.emitWarning = () => undefined;
    let code: string;
    try {
      code = strip(fs.readFileSync(file, 'utf8'));
    } finally {
      Object.defineProperty(process, 'emitWarning', warnings);
    }
    code = code.replace(
      /(\bfrom\s*)(['"])(\.{1,2}\/[^'"]+\.ts)\2/g,
      (_m, pre: string, q: string, spec: string) =>
        `${pre}${q}${load(path.resolve(path.dirname(file), spec))}${q}`,
    );
    const url = `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`;
    urls.set(file, url);
    return url;
  };
  return (workerUrl = new URL(load(WORKER_FILE)));
}

/** Chunk parts in sequence order, whichever thread produced them. */
class PartQueue {
  private readonly ready = new Map<number, ChunkPart[]>();
  private next = 0;
  private waiter: ((p: ChunkPart) => void) | undefined;
  private failed: Error | undefined;
  private failWaiter: ((e: Error) => void) | undefined;

  put(part: ChunkPart): void {
    let list = this.ready.get(part.seq);
    if (!list) this.ready.set(part.seq, (list = []));
    list.push(part);
    this.wake();
  }

  fail(err: Error): void {
    this.failed ??= err;
    this.failWaiter?.(err);
  }

  private wake(): void {
    if (!this.waiter) return;
    const p = this.shift();
    if (p) {
      const w = this.waiter;
      this.waiter = undefined;
      this.failWaiter = undefined;
      w(p);
    }
  }

  private shift(): ChunkPart | undefined {
    const list = this.ready.get(this.next);
    const p = list?.shift();
    if (p?.last) {
      this.ready.delete(this.next);
      this.next++;
    }
    return p;
  }

  /** The next part in order (parts of one chunk come in order from the one thread that made them). */
  take(): Promise<ChunkPart> {
    if (this.failed) return Promise.reject(this.failed);
    const p = this.shift();
    if (p) return Promise.resolve(p);
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }
}

export class ScanPool {
  private readonly workers: Worker[] = [];
  private readonly queue = new PartQueue();
  private readonly inline: ReturnType<typeof makeChunkScanner> | undefined;
  /** Which worker made each part's record array, to give it back. */
  private readonly owners = new WeakMap<Int32Array, number>();
  private readonly hashes = new Map<number, { resolve: (sha: string) => void; reject: (e: Error) => void }>();
  private turn = 0;

  /** `module`: the compiled scanner for `memory` (simd.ts), undefined where there is no wasm SIMD. */
  constructor(
    memory: ScanMemory,
    module: WasmModule | undefined,
    rules: LineRules,
    threads: number,
    partRecords: number,
  ) {
    if (threads === 0) {
      this.inline = makeChunkScanner(
        new Uint8Array(memory.buffer),
        scanFnsFor(memory, module),
        rules,
        partRecords,
      );
      return;
    }
    for (let k = 0; k < threads; k++) {
      const w = new Worker(workerSource(), {
        workerData: { memory, module, rules, partRecords, id: k },
        // Small heaps: a scan thread keeps almost nothing, and V8 would otherwise grow them freely.
        resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
      });
      w.on('message', (m: FromWorker) => {
        if (m.type === 'part') {
          this.owners.set(m.part.recs, m.worker);
          this.queue.put(m.part);
        } else if (m.type === 'hash') {
          this.hashes.get(m.index)?.resolve(m.sha256);
          this.hashes.delete(m.index);
        } else if (m.type === 'error') this.failAll(new Error(`planner worker failed: ${m.message}`));
      });
      w.on('error', (err: Error) => this.failAll(err));
      this.workers.push(w);
    }
  }

  private failAll(err: Error): void {
    this.queue.fail(err);
    for (const h of this.hashes.values()) h.reject(err);
    this.hashes.clear();
  }

  /** Checks the lines in memory[base, base+len) as chunk `seq`. */
  scan(seq: number, base: number, len: number): void {
    if (this.inline) this.inline.scan(seq, base, len, (p) => this.queue.put(p));
    else this.post(seq % this.workers.length, { type: 'scan', seq, base, len });
  }

  /** Adds a part made on the main thread (a line too long to scan). */
  put(part: ChunkPart): void {
    this.queue.put(part);
  }

  take(): Promise<ChunkPart> {
    return this.queue.take();
  }

  /** Returns a decided part's record array to the thread that made it (no allocation per chunk). */
  recycle(part: ChunkPart): void {
    if (this.inline) return this.inline.recycle(part.recs);
    const k = this.owners.get(part.recs);
    if (k === undefined) return;
    this.owners.delete(part.recs);
    this.workers[k]!.postMessage({ type: 'recycle', recs: part.recs } satisfies ToWorker, [
      part.recs.buffer as ArrayBuffer,
    ]);
  }

  /** sha256 of a finished shard file, computed off the main thread. */
  hash(index: number, file: string): Promise<string> {
    if (this.inline) return Promise.resolve(sha256File(file));
    return new Promise((resolve, reject) => {
      this.hashes.set(index, { resolve, reject });
      this.post(this.turn++ % this.workers.length, { type: 'hash', index, file });
    });
  }

  private post(k: number, m: ToWorker): void {
    this.workers[k]!.postMessage(m);
  }

  /** CPU time of each scan thread so far (bench and profiling). */
  async threadCpu(): Promise<{ user: number; system: number }[]> {
    return Promise.all(
      this.workers.map(
        (w) =>
          new Promise<{ user: number; system: number }>((resolve) => {
            const on = (m: FromWorker): void => {
              if (m.type !== 'cpu') return;
              w.off('message', on);
              resolve(m.usage);
            };
            w.on('message', on);
            w.postMessage({ type: 'cpu' } satisfies ToWorker);
          }),
      ),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
