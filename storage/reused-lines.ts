// The planner's reuse hook: each valid line is looked up in the answer store by its request key;
// a line found there is written, in input order, as an answered outcome record into the round
// folder's `reused.jsonl` (its result re-addressed to the line's custom_id and marked reused), its
// input line number into `reused.lines`, and goes into no shard. The merge reads the pair as one
// more shard already in final form. `validate` and `plan` only count.
import fs from 'node:fs';
import type { LineFacts, LineReuse, ReuseReport } from '../planner/types.ts';
import { KEY_BYTES } from '../common/request-key.ts';
import {
  parseAnswer,
  reusedResult,
  type AnswerLookup,
  type AnswerSource,
  type StoredAnswer,
} from './answers.ts';
import type { KeyFilter } from './key-filter.ts';
import { roundFiles } from './layout.ts';
import { encodeOutcomeHead } from './outcome-record.ts';

const FLUSH_BYTES = 1 << 20;

/** Bytes appended to a temporary file and renamed into place (after an fsync) on commit. */
class AppendFile {
  private readonly tmp: string;
  private readonly fd: number;
  private parts: Buffer[] = [];
  private pending = 0;
  private readonly file: string;

  constructor(file: string) {
    this.file = file;
    this.tmp = `${file}.tmp`;
    this.fd = fs.openSync(this.tmp, 'w');
  }

  push(b: Buffer): void {
    this.parts.push(b);
    this.pending += b.length;
    if (this.pending >= FLUSH_BYTES) this.flush();
  }

  private flush(): void {
    if (this.pending === 0) return;
    fs.writeSync(this.fd, Buffer.concat(this.parts, this.pending));
    this.parts = [];
    this.pending = 0;
  }

  commit(): void {
    this.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
  }

  abandon(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    fs.rmSync(this.tmp, { force: true });
  }
}

const NL = Buffer.from('\n');

function hexOf(key: Uint8Array, at: number): string {
  return Buffer.from(key.buffer, key.byteOffset + at, KEY_BYTES).toString('hex');
}

export interface ReusedLinesOptions {
  /** Where answers are looked up: what the store's `prepare` made for this plan (released by finish). */
  store: AnswerSource;
  /** The provider scope of the request keys (common/request-key.ts). */
  scope: string;
  /** The round folder to write `reused.jsonl` and `reused.lines` into. */
  dir?: string;
  /** Only count the lines that would be reused; they still go into shards (`validate`, `plan`). */
  countOnly?: boolean;
}

/** Answers earlier jobs' lines from the store (the planner's LineReuse). */
export class ReusedLines implements LineReuse {
  private readonly opts: ReusedLinesOptions;
  private records: AppendFile | undefined;
  private numbers: AppendFile | undefined;
  private readonly num = Buffer.alloc(4);
  private readonly report: ReuseReport = { lines: 0, usageByModel: {} };

  readonly scope: string;
  /** The store's key filter, made at the first line (null: the store has none). */
  private filter: KeyFilter | null | undefined;

  constructor(opts: ReusedLinesOptions) {
    this.opts = opts;
    this.scope = opts.scope;
  }

  /** Opened at the first reused line: the planner clears the folder of older plans' files first. */
  private open(): void {
    const files = roundFiles(this.opts.dir!);
    this.records = new AppendFile(files.reused());
    this.numbers = new AppendFile(files.reusedLines());
  }

  private ensureFilter(): KeyFilter | null {
    if (this.filter === undefined) this.filter = this.opts.store.keyFilter() ?? null;
    return this.filter;
  }

  /** The store's files and filter, for the scan threads to read their lines' answers. */
  answerLookup(): AnswerLookup | undefined {
    return this.opts.store.lookup?.(this.ensureFilter() ?? undefined);
  }

  take(
    line: number,
    key: Uint8Array,
    at: number,
    facts: LineFacts,
    stored: Uint8Array | undefined | null,
  ): boolean {
    let answer: StoredAnswer | undefined;
    if (stored === null) {
      // Not looked up on a scan thread. Most misses end here, in memory; a line the filter may
      // hold costs a lookup on disk.
      const filter = this.ensureFilter();
      if (filter && !filter.mayHold(key, at)) return false;
      answer = this.opts.store.get(hexOf(key, at));
    } else if (stored) answer = parseAnswer(Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength));
    if (!answer) return false;
    const customId = facts.customId();
    if (this.opts.dir) {
      if (!this.records) this.open();
      // Line index within this file: what the merge's records carry; attempt 0: never sent.
      const head = encodeOutcomeHead({
        line: this.report.lines,
        kind: 'ok',
        attempt: 0,
        customId,
      });
      this.records!.push(Buffer.from(head));
      this.records!.push(reusedResult(answer, customId));
      this.records!.push(NL);
      this.num.writeUInt32LE(line);
      this.numbers!.push(Buffer.from(this.num));
    }
    this.report.lines++;
    const u = answer.meta.usage;
    if (u) {
      const model = facts.model();
      const to = (this.report.usageByModel[model] ??= {
        prompt_tokens: 0,
        completion_tokens: 0,
        total_tokens: 0,
      });
      to.prompt_tokens += u[0];
      to.completion_tokens += u[1];
      to.total_tokens += u[2];
    }
    return this.opts.countOnly !== true;
  }

  finish(): ReuseReport {
    this.records?.commit();
    this.numbers?.commit();
    this.opts.store.release?.();
    return this.report;
  }

  /** Drops the temporary files of a plan that stopped. */
  abandon(): void {
    this.records?.abandon();
    this.numbers?.abandon();
    this.opts.store.release?.();
  }
}
