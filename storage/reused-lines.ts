// The planner's reuse hook: each valid line is looked up in the answer store by its request key;
// a line found there is written, in input order, as an answered outcome record into the round
// folder's `reused.jsonl` (its result re-addressed to the line's custom_id and marked reused), its
// input line number into `reused.lines`, and goes into no shard. The merge reads the pair as one
// more shard already in final form. `validate` and `plan` only count.
import fs from 'node:fs';
import type { LineReuse, ReuseReport } from '../planner/types.ts';
import { requestKey, type RequestParts } from '../common/request-key.ts';
import { reusedResult, type AnswerStore } from './answers.ts';
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

export interface ReusedLinesOptions {
  store: AnswerStore;
  /** The provider scope of the request keys (common/request-key.ts). */
  scope: string;
  /** Only answers this job stored (`--reuse-from`). */
  fromJob?: string;
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

  constructor(opts: ReusedLinesOptions) {
    this.opts = opts;
  }

  /** Opened at the first reused line: the planner clears the folder of older plans' files first. */
  private open(): void {
    const files = roundFiles(this.opts.dir!);
    this.records = new AppendFile(files.reused());
    this.numbers = new AppendFile(files.reusedLines());
  }

  take(line: number, bytes: Uint8Array, start: number, len: number): boolean {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('utf8');
    const req = JSON.parse(text) as RequestParts & { custom_id: string; body: { model?: unknown } };
    const answer = this.opts.store.get(requestKey(this.opts.scope, req), this.opts.fromJob);
    if (!answer) return false;
    if (this.opts.dir) {
      if (!this.records) this.open();
      // Line index within this file: what the merge's records carry; attempt 0: never sent.
      const head = encodeOutcomeHead({
        line: this.report.lines,
        kind: 'ok',
        attempt: 0,
        customId: req.custom_id,
      });
      this.records!.push(Buffer.from(head));
      this.records!.push(reusedResult(answer, req.custom_id));
      this.records!.push(NL);
      this.num.writeUInt32LE(line);
      this.numbers!.push(Buffer.from(this.num));
    }
    this.report.lines++;
    const u = answer.meta.usage;
    if (u) {
      const model = typeof req.body.model === 'string' ? req.body.model : answer.meta.model;
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
    return this.report;
  }

  /** Drops the temporary files of a plan that stopped. */
  abandon(): void {
    this.records?.abandon();
    this.numbers?.abandon();
  }
}
