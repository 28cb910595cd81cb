// A batch's result files while it runs and when it ends: the partial output and error files (cut
// back to the last checkpoint after a crash, lines written in the provider's own order), and the
// finish that turns them into the batch's stored files.
import fs from 'node:fs';
import { nowSeconds, type BatchStatus } from './objects.ts';
import type { ProcessorDeps } from './processor.ts';
import type { StoredBatch } from './store.ts';

export type Final = Extract<BatchStatus, 'completed' | 'expired' | 'cancelled'>;

/** Turns the partial files into the batch's output and error files and ends the batch. */
export function finishBatch(
  deps: ProcessorDeps,
  sb: StoredBatch,
  final: Final,
  save: (sb: StoredBatch) => void,
): void {
  const { store } = deps;
  const f = deps.faults();
  const outPart = store.partPath(sb.batch.id, 'output');
  const errPart = store.partPath(sb.batch.id, 'error');
  truncateTo(outPart, sb.run.outputBytes);
  truncateTo(errPart, sb.run.errorBytes);
  let outputId: string | null = null;
  if (final === 'completed' && f.quirks.includes('completed-without-output-file') && sb.run.succeeded === 0) {
    // No output file at all: failed lines that sat in it (failed-lines-in-output) move to the error file.
    if (sb.run.outputBytes > 0) {
      appendFile(outPart, errPart);
      sb.run.errorBytes += sb.run.outputBytes;
      sb.run.outputBytes = 0;
      fs.rmSync(outPart, { force: true });
    }
  } else if (final === 'completed' || sb.run.outputBytes > 0) {
    outputId = register(deps, sb, 'output', outPart);
  }
  const errorId = sb.run.errorBytes > 0 ? register(deps, sb, 'error', errPart) : null;
  fs.rmSync(outPart, { force: true });
  fs.rmSync(errPart, { force: true });
  const now = nowSeconds();
  sb.batch.status = final;
  sb.batch.output_file_id = outputId;
  sb.batch.error_file_id = errorId;
  if (final === 'completed') sb.batch.completed_at = now;
  else if (final === 'expired') sb.batch.expired_at = now;
  else sb.batch.cancelled_at = now;
  save(sb);
  store.releaseDeleted(sb.batch.input_file_id);
  deps.logger.debug({ batchId: sb.batch.id, status: final }, 'batch finished');
}

/** Registers a partial file as a stored file; the id derives from the batch, so a resumed
 * finish finds the file it already registered instead of making a second one. */
function register(deps: ProcessorDeps, sb: StoredBatch, kind: 'output' | 'error', part: string): string {
  const { store } = deps;
  const id = `file-batch_${kind}-${sb.batch.id.replace(/^batch_/, '')}`;
  if (store.files.has(id)) return id;
  if (!fs.existsSync(part)) fs.writeFileSync(part, '');
  store.addFile(
    {
      file: {
        id,
        object: 'file',
        bytes: fs.statSync(part).size,
        created_at: nowSeconds(),
        filename: `${sb.batch.id}_${kind}.jsonl`,
        purpose: 'batch_output',
        status: 'processed',
        status_details: null,
      },
      sha256: '',
    },
    part,
  );
  return id;
}

/** Appends one file to another in 1 MB pieces (it can be as large as a whole output). */
function appendFile(from: string, to: string): void {
  const src = fs.openSync(from, 'r');
  const dst = fs.openSync(to, 'a');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let n = fs.readSync(src, buf); n > 0; n = fs.readSync(src, buf)) fs.writeSync(dst, buf, 0, n);
  } finally {
    fs.closeSync(src);
    fs.closeSync(dst);
  }
}

export interface Part {
  /** Queues a result line; lines are written in the order of their keys. */
  add(text: string, key: number): void;
  /** How many lines are queued. */
  readonly pending: number;
  /** Writes the queued lines; returns the bytes written. */
  flush(): number;
  close(): void;
}

export function truncateTo(file: string, bytes: number): void {
  if (fs.existsSync(file) && fs.statSync(file).size !== bytes) fs.truncateSync(file, bytes);
}

/** Opens a partial result file for appending, first cutting what a crash left past the checkpoint. */
export function openPart(file: string, checkpointBytes: number): Part {
  if (!fs.existsSync(file)) fs.writeFileSync(file, '');
  truncateTo(file, checkpointBytes);
  const fd = fs.openSync(file, 'a');
  let texts: string[] = [];
  let keys: number[] = [];
  return {
    add(text, key) {
      texts.push(text);
      keys.push(key);
    },
    get pending() {
      return texts.length;
    },
    flush() {
      if (texts.length === 0) return 0;
      // Providers do not keep input order in their result files; neither does the emulator, so a
      // client that joins by position instead of by custom_id fails here first. Deterministic.
      const order = keys.map((_, i) => i).sort((a, b) => keys[a]! - keys[b]! || a - b);
      const buf = Buffer.from(order.map((i) => texts[i]).join(''), 'utf8');
      texts = [];
      keys = [];
      fs.writeSync(fd, buf);
      return buf.length;
    },
    close() {
      fs.closeSync(fd);
    },
  };
}
