// Everything the emulator knows, kept under its data dir so it survives a restart: one JSON file per
// file and per batch (written to a temporary name and renamed), file contents beside them, the
// submission log and the request counters. Metadata is small and lives in memory too; contents never.
import fs from 'node:fs';
import path from 'node:path';
import type { BatchObject, FileObject } from './objects.ts';
import { TERMINAL_STATUSES } from './objects.ts';
import { SubmissionLog } from './submissions.ts';

/** Statuses in which a batch's tokens count against its model's enqueued-token limit. */
const ENQUEUED_STATUSES = new Set(['in_progress', 'finalizing', 'cancelling']);

export interface StoredFile {
  file: FileObject;
  /** Creation order; lists are newest first and seconds are too coarse to order by. */
  seq: number;
  sha256: string;
  /** Deleted through the API but still read by a running batch; gone once that batch ends. */
  deleted: boolean;
}

/** A batch's progress, checkpointed so processing resumes where it stopped. Never on the wire. */
export interface RunState {
  /** sha256 of the input and how many earlier batches had that same content: keys batch-level draws. */
  inputSha256: string;
  contentAttempt: number;
  /** Byte offset in the input after the last processed line, and that line count. */
  inputOffset: number;
  processedLines: number;
  /** Lengths of the partial output and error files at the checkpoint; longer files are truncated. */
  outputBytes: number;
  errorBytes: number;
  succeeded: number;
  failedLines: number;
  /** Failed lines written to the output file (quirk failed-lines-in-output). */
  failedInOutput: number;
  /** Expiry decided: the rest of the input goes to the error file as batch_expired. */
  expiring: boolean;
  /** Set once validation passed: the model and input tokens the batch holds enqueued until it ends. */
  model?: string;
  inputTokens?: number;
  /** Validation refused the batch for the model's enqueued-token limit. */
  refusedForTokens?: boolean;
}

/** `GET /_emulator/stats` (docs/emulator.md): batches are never deleted, so the counts derive from them. */
export interface EmulatorStats {
  requests: Record<string, number>;
  /** Requests answered 429 by the rate limits (`rateLimits`), by route. */
  throttled: Record<string, number>;
  batchesCreated: number;
  batchesByInputFile: Record<string, number>;
  /** Files stored now (inputs and results), and their bytes. */
  files: number;
  bytesStored: number;
  /** Batches refused for the enqueued-token limit (`enqueuedTokenLimit`). */
  tokenLimitRefusals: number;
  /** Request lines in every batch created (each batch's `request_counts.total`). */
  linesInBatches: number;
  /** The most input tokens each model had enqueued at once since the emulator started. */
  peakEnqueuedTokens: Record<string, number>;
  /** The most batches unfinished at once since the emulator started (counted at each create). */
  peakUnfinishedBatches: number;
}

export interface StoredBatch {
  batch: BatchObject;
  seq: number;
  run: RunState;
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value));
  fs.renameSync(tmp, file);
}

function readJsonDir<T>(dir: string): T[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as T);
}

export class Store {
  readonly files = new Map<string, StoredFile>();
  readonly batches = new Map<string, StoredBatch>();
  readonly submissions: SubmissionLog;
  readonly requests: Record<string, number> = {};
  readonly throttled: Record<string, number> = {};
  readonly #dir: string;
  /** In memory only: a statistic for tests, not state a restart must keep. */
  readonly #peakEnqueued: Record<string, number> = {};
  #peakUnfinished = 0;
  #fileSeq = 0;
  #batchSeq = 0;
  #requestsTimer: NodeJS.Timeout | undefined;

  constructor(dataDir: string) {
    this.#dir = path.resolve(dataDir);
    this.submissions = new SubmissionLog(path.join(this.#dir, 'submissions.log'));
  }

  async load(): Promise<void> {
    for (const sub of ['files', 'batches', 'work', 'tmp']) {
      fs.mkdirSync(path.join(this.#dir, sub), { recursive: true });
    }
    // Uploads cut off by a stop are not files.
    for (const n of fs.readdirSync(this.#tmpDir)) fs.rmSync(path.join(this.#tmpDir, n), { force: true });
    for (const f of readJsonDir<StoredFile>(path.join(this.#dir, 'files'))) {
      this.files.set(f.file.id, f);
      this.#fileSeq = Math.max(this.#fileSeq, f.seq);
    }
    for (const b of readJsonDir<StoredBatch>(path.join(this.#dir, 'batches'))) {
      this.batches.set(b.batch.id, b);
      this.#batchSeq = Math.max(this.#batchSeq, b.seq);
    }
    const counters = path.join(this.#dir, 'requests.json');
    if (fs.existsSync(counters)) {
      Object.assign(this.requests, JSON.parse(fs.readFileSync(counters, 'utf8')) as Record<string, number>);
    }
    await this.submissions.load();
    for (const f of this.files.values()) if (f.deleted) this.releaseDeleted(f.file.id);
  }

  get #tmpDir(): string {
    return path.join(this.#dir, 'tmp');
  }

  /** A fresh path for an upload being received; moved into place by `addFile`. */
  uploadTempPath(): string {
    return path.join(this.#tmpDir, `${Date.now()}-${Math.random().toString(36).slice(2)}.upload`);
  }

  contentPath(fileId: string): string {
    return path.join(this.#dir, 'files', `${fileId}.data`);
  }

  partPath(batchId: string, kind: 'output' | 'error'): string {
    return path.join(this.#dir, 'work', `${batchId}.${kind}.part`);
  }

  /** Moves `contentFrom` into place (if given) and records the file. */
  addFile(file: Omit<StoredFile, 'seq' | 'deleted'>, contentFrom?: string): StoredFile {
    if (contentFrom) fs.renameSync(contentFrom, this.contentPath(file.file.id));
    const stored: StoredFile = { ...file, seq: ++this.#fileSeq, deleted: false };
    this.saveFile(stored);
    return stored;
  }

  saveFile(f: StoredFile): void {
    writeJsonAtomic(path.join(this.#dir, 'files', `${f.file.id}.json`), f);
    this.files.set(f.file.id, f);
  }

  liveFile(id: string): StoredFile | undefined {
    const f = this.files.get(id);
    return f && !f.deleted ? f : undefined;
  }

  /** Deletes a file; its content stays while a batch that is not finished still reads it. */
  deleteFile(id: string): void {
    const f = this.files.get(id);
    if (!f) return;
    f.deleted = true;
    this.saveFile(f);
    this.releaseDeleted(id);
  }

  /** Removes a deleted file for good once no unfinished batch reads it. */
  releaseDeleted(id: string): void {
    const f = this.files.get(id);
    if (!f?.deleted) return;
    const inUse = [...this.batches.values()].some(
      (b) => b.batch.input_file_id === id && !TERMINAL_STATUSES.includes(b.batch.status),
    );
    if (inUse) return;
    fs.rmSync(this.contentPath(id), { force: true });
    fs.rmSync(path.join(this.#dir, 'files', `${id}.json`), { force: true });
    this.files.delete(id);
  }

  addBatch(batch: BatchObject, run: RunState): StoredBatch {
    const stored: StoredBatch = { batch, run, seq: ++this.#batchSeq };
    this.saveBatch(stored);
    let unfinished = 0;
    for (const b of this.batches.values()) if (!TERMINAL_STATUSES.includes(b.batch.status)) unfinished++;
    this.#peakUnfinished = Math.max(this.#peakUnfinished, unfinished);
    return stored;
  }

  saveBatch(b: StoredBatch): void {
    writeJsonAtomic(path.join(this.#dir, 'batches', `${b.batch.id}.json`), b);
    this.batches.set(b.batch.id, b);
  }

  countRequest(route: string): number {
    const n = (this.requests[route] ?? 0) + 1;
    this.requests[route] = n;
    // Counters are statistics: written a moment later in one go, and on close.
    this.#requestsTimer ??= setTimeout(() => this.flushRequests(), 200).unref();
    return n;
  }

  flushRequests(): void {
    clearTimeout(this.#requestsTimer);
    this.#requestsTimer = undefined;
    writeJsonAtomic(path.join(this.#dir, 'requests.json'), this.requests);
  }

  /** Input tokens of `model` in batches that passed validation and have not ended. */
  enqueuedTokens(model: string): number {
    let n = 0;
    for (const b of this.batches.values())
      if (b.run.model === model && ENQUEUED_STATUSES.has(b.batch.status)) n += b.run.inputTokens ?? 0;
    return n;
  }

  /** Notes the model's enqueued total after a batch was admitted, for `peakEnqueuedTokens`. */
  noteEnqueued(model: string): void {
    this.#peakEnqueued[model] = Math.max(this.#peakEnqueued[model] ?? 0, this.enqueuedTokens(model));
  }

  stats(): EmulatorStats {
    const batchesByInputFile: Record<string, number> = {};
    let tokenLimitRefusals = 0;
    let linesInBatches = 0;
    for (const b of this.batches.values()) {
      linesInBatches += b.batch.request_counts?.total ?? 0;
      batchesByInputFile[b.batch.input_file_id] = (batchesByInputFile[b.batch.input_file_id] ?? 0) + 1;
      if (b.run.refusedForTokens) tokenLimitRefusals++;
    }
    let files = 0;
    let bytesStored = 0;
    for (const f of this.files.values()) {
      if (f.deleted) continue;
      files++;
      bytesStored += f.file.bytes;
    }
    return {
      requests: { ...this.requests },
      throttled: { ...this.throttled },
      batchesCreated: this.batches.size,
      batchesByInputFile,
      files,
      bytesStored,
      tokenLimitRefusals,
      linesInBatches,
      peakEnqueuedTokens: { ...this.#peakEnqueued },
      peakUnfinishedBatches: this.#peakUnfinished,
    };
  }
}
