// A scan worker: checks the chunks the planner's main thread reads into the shared scan memory and
// hashes finished shard files. Started by pool.ts; no state beyond one chunk at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { makeChunkScanner, type ChunkPart } from './chunk.ts';
import type { LineRules } from './line.ts';
import { scanFnsFor, type ScanMemory, type WasmModule } from './simd.ts';
import { sha256File } from './writer.ts';

export type ToWorker =
  | { type: 'scan'; seq: number; base: number; len: number }
  | { type: 'hash'; index: number; file: string }
  | { type: 'recycle'; recs: Int32Array }
  | { type: 'cpu' };
export type FromWorker =
  | { type: 'part'; part: ChunkPart; worker: number }
  | { type: 'hash'; index: number; sha256: string }
  | { type: 'cpu'; usage: { user: number; system: number } }
  | { type: 'error'; message: string };

const { memory, module, rules, partRecords, id } = workerData as {
  id: number;
  memory: ScanMemory;
  module: WasmModule | undefined;
  rules: LineRules;
  partRecords: number;
};
const port = parentPort!;
const scanner = makeChunkScanner(
  new Uint8Array(memory.buffer),
  scanFnsFor(memory, module),
  rules,
  partRecords,
);

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'recycle') scanner.recycle(m.recs);
    else if (m.type === 'cpu') {
      port.postMessage({ type: 'cpu', usage: process.threadCpuUsage() } satisfies FromWorker);
    } else if (m.type === 'scan') {
      scanner.scan(m.seq, m.base, m.len, (part) => {
        const transfer: ArrayBuffer[] = [part.recs.buffer as ArrayBuffer];
        if (part.out) transfer.push(part.out.buffer as ArrayBuffer);
        for (const a of [part.keys, part.found, part.answers]) if (a) transfer.push(a.buffer as ArrayBuffer);
        port.postMessage({ type: 'part', part, worker: id } satisfies FromWorker, transfer);
      });
    } else {
      port.postMessage({ type: 'hash', index: m.index, sha256: sha256File(m.file) } satisfies FromWorker);
    }
  } catch (err) {
    port.postMessage({ type: 'error', message: (err as Error).stack ?? String(err) } satisfies FromWorker);
  }
});
