// The answer store: successful answers of earlier jobs, keyed by their request's canonical hash
// (common/request-key.ts), so that a later job hands them out instead of paying for them again.
// `AnswerStore` is what the planner's lookups and the collection's writes need; `LocalAnswerStore`
// (storage/local-answers.ts) keeps it in a folder beside the data root, `S3AnswerStore`
// (storage/s3-answers.ts) in the job storage's bucket. Both pack answers into segments with sorted
// indexes (storage/answer-segments.ts); before a plan, `prepare` merges the indexes into one
// (storage/answer-index.ts) that the plan's lookups read.
//
// An answer is stored as `<meta JSON>\n<result line>`; a reader checks the result's length against
// the meta, so a torn record (a crash before the data reached the disk) reads as a miss, never as
// a wrong answer.
import { createHash } from 'node:crypto';
import type { MergedIndexSpec } from './answer-index.ts';
import type { KeyFilter, SharedKeyFilter } from './key-filter.ts';

/** What is kept beside an answer's bytes. */
export interface AnswerMeta {
  /** The workflow id of the job that stored it. */
  job: string;
  /** The request's model (for tokens and cost saved by model). */
  model: string;
  /** prompt, completion, total tokens the provider reported, if any. */
  usage: [number, number, number] | null;
  /** Byte range of the custom_id's JSON string in the result line: where a new one goes. */
  at: [number, number];
  /** Bytes of the result line (a shorter file is torn and ignored). */
  n: number;
}

export interface StoredAnswer {
  meta: AnswerMeta;
  /** The provider's result line as stored (no newline). */
  result: Buffer;
}

export interface NewAnswer {
  model: string;
  usage: [number, number, number] | null;
  customId: string;
  /** The provider's result line (no newline). */
  result: Uint8Array;
}

/** What one plan's lookups read (made by the store's `prepare`). Synchronous: the planner looks up in its decide loop. */
export interface AnswerSource {
  /** The answer stored under `key` (hex), or undefined. */
  get(key: string): StoredAnswer | undefined;
  /**
   * A filter of the keys this source holds: a key it says no to is not stored. Undefined when it
   * has none: every lookup then asks `get`.
   */
  keyFilter(): KeyFilter | undefined;
  /**
   * What other threads need to read answers of this source with an AnswerReader
   * (storage/answer-index.ts), `filter` (from keyFilter) shared with them; absent where only the
   * thread holding the source can look up (then the planner's main thread calls `get`).
   */
  lookup?(filter: KeyFilter | undefined): AnswerLookup;
  /** Frees what the source holds (descriptors, its merged index), after the plan. */
  release?(): void;
}

/** Where answers are stored and found. */
export interface AnswerStore {
  /**
   * Makes ready what one plan's synchronous lookups need (`fromJob`'s answers only, when given)
   * and returns the source to look up in; release it after the plan.
   */
  prepare(fromJob: string | undefined): Promise<AnswerSource>;
  /** Whether `jobId` stored any answer here (that eviction left). */
  hasJob(jobId: string): boolean | Promise<boolean>;
  /** A writer for the answers of `jobId`; close it to commit them (and maybe evict). */
  writer(jobId: string): AnswerWriter;
}

/** Plain data (sent to threads as is): a merged index and the source's shared key filter. */
export interface AnswerLookup {
  index: MergedIndexSpec;
  filter?: SharedKeyFilter;
}

export interface AnswerWriter {
  /** Stores one answer under `key`; a result without its custom_id where expected is skipped. */
  put(key: string, answer: NewAnswer): boolean;
  /** Commits what was put and accounts its bytes (evicting past the bound). */
  close(): void | Promise<void>;
  /** Drops what was put and frees the writer's file, after a failed put or commit. */
  abandon(): void;
}

/** Default size bound of a store: answers past it are evicted oldest first. */
export const DEFAULT_ANSWERS_MAX_BYTES = 4 * 1000 ** 3;
/** Default memory bound of a plan's key filter (64 MiB: ~33M keys at 0.05%, ~56M at 1%). */
export const DEFAULT_ANSWERS_FILTER_BYTES = 64 * 1024 ** 2;
/** The folder under the data root where answers live by default. */
export const ANSWERS_DIR_NAME = '.batchpilot-answers';

/** A short, name-safe tag of a job id (ids may hold `/` and be 1,000 characters long). */
export function jobTag(jobId: string): string {
  return createHash('sha256').update(jobId).digest('hex').slice(0, 16);
}

/** Where the custom_id's JSON string sits in a result line, checked by parsing the result. */
export function customIdRange(result: Uint8Array, customId: string): [number, number] | undefined {
  const buf = Buffer.from(result.buffer, result.byteOffset, result.byteLength);
  const value = Buffer.from(JSON.stringify(customId));
  const key = Buffer.from('"custom_id"');
  for (let from = 0; ;) {
    const k = buf.indexOf(key, from);
    if (k < 0) return undefined;
    let p = k + key.length;
    while (buf[p] === 0x20 || buf[p] === 0x09 || buf[p] === 0x0a || buf[p] === 0x0d) p++;
    if (buf[p] === 0x3a) {
      p++;
      while (buf[p] === 0x20 || buf[p] === 0x09 || buf[p] === 0x0a || buf[p] === 0x0d) p++;
      if (buf.compare(value, 0, value.length, p, p + value.length) === 0) {
        // The top-level custom_id, not one nested in the response: replacing it must show there.
        const probe = Buffer.concat([
          buf.subarray(0, p),
          Buffer.from('"\\u0000probe"'),
          buf.subarray(p + value.length),
        ]);
        try {
          if ((JSON.parse(probe.toString('utf8')) as { custom_id?: unknown }).custom_id === '\u0000probe')
            return [p, p + value.length];
        } catch {
          // not this occurrence
        }
      }
    }
    from = k + 1;
  }
}

/**
 * The stored result line re-addressed to `customId` and marked as reused: the custom_id's value
 * replaced, `"batchpilot_reused":true` right after it, every other byte as the provider sent it.
 */
export function reusedResult(answer: StoredAnswer, customId: string): Buffer {
  const [a, b] = answer.meta.at;
  return Buffer.concat([
    answer.result.subarray(0, a),
    Buffer.from(`${JSON.stringify(customId)},"batchpilot_reused":true`),
    answer.result.subarray(b),
  ]);
}

/** An answer as stored: `<meta JSON>\n<result line>` (`at`: where its custom_id sits). */
export function answerRecord(jobId: string, answer: NewAnswer, at: [number, number]): Buffer {
  const meta: AnswerMeta = {
    job: jobId,
    model: answer.model,
    usage: answer.usage,
    at,
    n: answer.result.byteLength,
  };
  return Buffer.concat([Buffer.from(`${JSON.stringify(meta)}\n`), answer.result]);
}

/** A stored file's answer, or undefined when it is torn (shorter than its header says). */
export function parseAnswer(bytes: Buffer): StoredAnswer | undefined {
  const nl = bytes.indexOf(10);
  if (nl < 0) return undefined;
  try {
    const meta = JSON.parse(bytes.toString('utf8', 0, nl)) as AnswerMeta;
    if (bytes.length - nl - 1 !== meta.n) return undefined;
    return { meta, result: bytes.subarray(nl + 1) };
  } catch {
    return undefined;
  }
}
