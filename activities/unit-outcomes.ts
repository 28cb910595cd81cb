// One unit's outcomes while collection writes them: which of its lines have one, the writers of the
// outcome files (one per original shard its lines came from) and the counts the marker will hold.
// Collection (collect.ts) reads the provider's files and hands each line here; what no file answered
// is settled last (settleUnanswered).
import type { UnattributedError, Unit, UnitCounts } from '../common/job-types.ts';
import type { Usage } from '../common/pricing.ts';
import { outcomeFile } from '../storage/layout.ts';
import { encodeOutcomeHead } from '../storage/outcome-record.ts';
import type { AnswerCapture } from './answer-capture.ts';
import { ByteWriter } from './byte-writer.ts';
import { isCancelledByUser, missingLine, readError, type Classified } from './classify.ts';
import { missingAmidUnreadable } from './malformed-output.ts';
import type OpenAI from 'openai';

export const NO_RESULT = new Uint8Array(0);

export class UnitOutcomes {
  /** 1 at each line of the unit that has its outcome. */
  readonly seen: Uint8Array;
  readonly writers = new Map<number, ByteWriter>();
  readonly counts: UnitCounts = { succeeded: 0, failed: 0, retry: 0 };
  /** Lines the user's cancel stopped (inside `failed`). */
  cancelled = 0;
  tokens = 0;
  readonly usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  /** Error lines naming no line of the unit: the batch's own reasons. */
  readonly unattributed: UnattributedError[] = [];
  /** Malformed lines naming no request of the unit, counted to account for lines left missing. */
  readonly unreadable = { count: 0, first: '' };

  private readonly workDir: string;
  private readonly unit: Unit;
  private readonly maxAttempts: number;
  /** The unit's custom_ids, in its file's order. */
  readonly list: string[];
  /** Where each line came from, (original shard, index) pairs; null in round 1 (the unit is the shard). */
  private readonly origins: Uint32Array | null;
  private readonly capture: AnswerCapture | undefined;

  constructor(
    workDir: string,
    unit: Unit,
    maxAttempts: number,
    list: string[],
    origins: Uint32Array | null,
    capture: AnswerCapture | undefined,
  ) {
    this.workDir = workDir;
    this.unit = unit;
    this.maxAttempts = maxAttempts;
    this.list = list;
    this.origins = origins;
    this.capture = capture;
    this.seen = new Uint8Array(list.length);
  }

  private originOf(p: number): [number, number] {
    const o = this.origins;
    return o ? [o[2 * p]!, o[2 * p + 1]!] : [this.unit.index, p];
  }

  /** Writes line `p`'s outcome, with the provider's result line when there is one, and counts it. */
  async record(p: number, c: Classified, result: Uint8Array): Promise<void> {
    const { unit } = this;
    this.seen[p] = 1;
    const [shard, i] = this.originOf(p);
    let w = this.writers.get(shard);
    if (!w) {
      w = new ByteWriter(outcomeFile(this.workDir, shard, unit.round, unit.index), 'durable');
      this.writers.set(shard, w);
    }
    const head = encodeOutcomeHead({
      line: i,
      kind: c.kind,
      attempt: unit.round,
      customId: this.list[p]!,
      ...(c.usage ? { usage: c.usage } : {}),
      ...(c.error ? { error: c.error } : {}),
    });
    const wait = w.headed(head, result);
    if (wait) await wait;
    if (c.usage) {
      this.tokens += c.usage[2];
      this.usage.prompt_tokens += c.usage[0];
      this.usage.completion_tokens += c.usage[1];
      this.usage.total_tokens += c.usage[2];
    }
    if (c.kind === 'ok') {
      this.counts.succeeded++;
      this.capture?.put(p, this.list[p]!, c.usage, result);
    } else if (c.kind === 'retry' && unit.round < this.maxAttempts) this.counts.retry++;
    else this.counts.failed++;
    if (isCancelledByUser(c.kind, c.error?.code)) this.cancelled++;
  }

  async commit(): Promise<void> {
    for (const w of this.writers.values()) await w.commit();
  }

  async abort(): Promise<void> {
    for (const w of this.writers.values()) await w.abort();
  }
}

/**
 * Gives every line no file answered its outcome, with the most specific reason known: the line's
 * own entry in the batch's errors.data, the batch's whole-file error, the error file's unattributed
 * lines. A failed batch ran nothing: lines it names are bad for good, the rest go again.
 */
export async function settleUnanswered(
  out: UnitOutcomes,
  batch: OpenAI.Batches.Batch | undefined,
  cancelledByUs: boolean,
): Promise<void> {
  const status = batch?.status ?? 'completed';
  const fileErrors = new Map<number, { code: string; message: string }>();
  let wholeFile: { code: string; message: string } | undefined;
  for (const e of batch?.errors?.data ?? []) {
    const { code, message } = readError(e);
    const err = { code: code ?? 'batch_failed', message: message ?? '' };
    if (typeof e.line === 'number' && e.line >= 1) fileErrors.set(e.line - 1, err);
    else wholeFile ??= err;
  }
  const first = out.unattributed[0];
  const batchReason = first
    ? { code: first.code, message: first.message, status_code: first.status_code }
    : undefined;
  const missingCount = out.list.length - out.seen.reduce((a, b) => a + b, 0);
  for (let p = 0; p < out.list.length; p++) {
    if (out.seen[p]) continue;
    const named = fileErrors.get(p);
    if (status === 'failed') {
      const err = named ??
        wholeFile ??
        batchReason ?? { code: 'batch_failed', message: 'the batch failed without naming this line' };
      const kind = named ? 'permanent' : 'retry';
      await out.record(p, { kind, error: { status_code: null, ...err }, usage: null }, NO_RESULT);
    } else {
      const missing = missingLine(status, cancelledByUs);
      let c = batchReason && !cancelledByUs ? { ...missing, error: batchReason } : missing;
      if (out.unreadable.count > 0 && !cancelledByUs)
        c = missingAmidUnreadable(c, missingCount, out.unreadable);
      await out.record(p, c, NO_RESULT);
    }
  }
}
