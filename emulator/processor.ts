// Runs batches through the status machine (docs/providers.md) with the timing and faults in force at
// each moment. Progress is checkpointed (input offset, line counts, lengths of the partial output
// and error files) so a batch resumes after a restart without losing or repeating a line.
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { damagedResultLine, orderKey, requestDigest, resultLine } from './envelope.ts';
import { enqueuedTokenLimitFor, type ResolvedFaults } from './faults.ts';
import type { EmulatorLimits } from './limits.ts';
import { readLines, type Line } from './lines.ts';
import { decideLine } from './line-outcome.ts';
import { nowSeconds, type BatchError, type BatchStatus } from './objects.ts';
import { draw } from './random.ts';
import { finishBatch, openPart, type Final, type Part } from './result-files.ts';
import type { Store, StoredBatch } from './store.ts';
import { validateInputFile } from './validate-file.ts';

export interface ProcessorDeps {
  store: Store;
  faults: () => ResolvedFaults;
  limits: EmulatorLimits;
  logger: Logger;
}

/** Most lines handled between two checkpoints, so a fast batch still yields and saves progress. */
const CHUNK = 500;
/** Longest pause between two looks at a running batch (cancel, new faults, stop). */
const TICK_MS = 25;
/** Progress is saved at least this often (and at every stop); a crash only redoes what came after. */
const CHECKPOINT_MS = 200;
/**
 * …and whenever a batch has its share of this many result lines waiting to be written (each save
 * writes three files, so fewer saves are cheaper, but every running batch holds its share).
 */
const PENDING_LINES = 20_000;

export class Processor {
  readonly #deps: ProcessorDeps;
  readonly #running = new Map<string, Promise<void>>();
  readonly #stop = new AbortController();

  constructor(deps: ProcessorDeps) {
    this.#deps = deps;
  }

  /** Starts (or keeps) the runner of a batch that is not finished. */
  start(batchId: string): void {
    if (this.#running.has(batchId) || this.#stopped) return;
    const sb = this.#deps.store.batches.get(batchId);
    if (!sb) return;
    const run = this.#run(sb)
      .catch((err: unknown) => this.#deps.logger.error({ err, batchId }, 'batch runner failed'))
      .finally(() => this.#running.delete(batchId));
    this.#running.set(batchId, run);
  }

  /** Picks up every unfinished batch, e.g. after a restart. */
  resumeAll(): void {
    for (const id of this.#deps.store.batches.keys()) this.start(id);
  }

  /** Stops every runner at its next checkpoint. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#running.values());
  }

  /** Result lines one batch may hold before saving: PENDING_LINES shared by the running batches. */
  #pendingShare(): number {
    return Math.max(CHUNK, Math.floor(PENDING_LINES / Math.max(1, this.#running.size)));
  }

  get #stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  async #run(sb: StoredBatch): Promise<void> {
    while (!this.#stopped) {
      switch (sb.batch.status) {
        case 'validating':
          await this.#validate(sb);
          break;
        case 'in_progress':
          await this.#process(sb);
          break;
        case 'finalizing':
          await this.#wait(sb, 'finalizing', () => this.#deps.faults().finalizingMs);
          if (!this.#stopped && sb.batch.status === 'finalizing') this.#finish(sb, 'completed');
          break;
        case 'cancelling':
          // Cancelling takes about as long as finalizing: the provider writes the partial files.
          await this.#wait(sb, 'cancelling', () => this.#deps.faults().finalizingMs);
          if (!this.#stopped) this.#finish(sb, 'cancelled');
          break;
        default:
          return;
      }
    }
  }

  /** Sleeps until `ms()` (read live) has passed since now, the status changes, or the stop. */
  async #wait(sb: StoredBatch, status: BatchStatus, ms: () => number, since = Date.now()): Promise<void> {
    while (!this.#stopped && sb.batch.status === status) {
      const left = ms() - (Date.now() - since);
      if (left <= 0) return;
      await this.#sleep(Math.min(left, TICK_MS));
    }
  }

  async #sleep(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.#stop.signal });
    } catch {
      // Aborted by stop(): the caller sees #stopped.
    }
  }

  #save(sb: StoredBatch): void {
    this.#deps.store.saveBatch(sb);
  }

  #failValidation(sb: StoredBatch, errors: BatchError[]): void {
    sb.batch.status = 'failed';
    sb.batch.failed_at = nowSeconds();
    sb.batch.errors = { object: 'list', data: errors };
    this.#save(sb);
    this.#deps.store.releaseDeleted(sb.batch.input_file_id);
  }

  async #validate(sb: StoredBatch): Promise<void> {
    const started = Date.now();
    const { store, limits } = this.#deps;
    const input = store.files.get(sb.batch.input_file_id);
    const file = store.contentPath(sb.batch.input_file_id);
    if (!input || !fs.existsSync(file)) {
      this.#failValidation(sb, [
        { code: 'file_not_found', message: 'the input file is gone', param: 'input_file_id', line: null },
      ]);
      return;
    }
    const result = await validateInputFile(
      file,
      { endpoint: sb.batch.endpoint, limits, fileBytes: input.file.bytes },
      () => this.#stopped || sb.batch.status !== 'validating',
    );
    if (!result) return;
    await this.#wait(sb, 'validating', () => this.#deps.faults().validatingMs, started);
    if (this.#stopped || sb.batch.status !== 'validating') return;
    const f = this.#deps.faults();
    if (result.errors.length > 0) return this.#failValidation(sb, result.errors);
    if (result.model !== undefined && this.#overTokenLimit(sb, f, result.model, result.inputTokens)) return;
    if (draw(f.seed, 'fail-batch', sb.run.inputSha256, sb.run.contentAttempt) < f.failBatchRate) {
      if (f.quirks.includes('batch-error-line')) return this.#failAsErrorLine(sb, result.lines);
      return this.#failValidation(sb, [
        {
          code: 'token_limit_exceeded',
          message: 'Enqueued token limit reached for this model. Try again later.',
          param: null,
          line: null,
        },
      ]);
    }
    sb.batch.status = 'in_progress';
    sb.batch.in_progress_at = nowSeconds();
    sb.batch.request_counts = { total: result.lines, completed: 0, failed: 0 };
    if (result.model !== undefined) {
      sb.run.model = result.model;
      sb.run.inputTokens = result.inputTokens;
    }
    this.#save(sb);
    if (result.model !== undefined) this.#deps.store.noteEnqueued(result.model);
  }

  /**
   * OpenAI's enqueued-token limit: a batch whose input tokens would take its model's enqueued total
   * (batches past validation and not ended) over the limit fails validation as OpenAI's does.
   * Checked and admitted without an await in between, so two batches cannot both take the room.
   */
  #overTokenLimit(sb: StoredBatch, f: ResolvedFaults, model: string, tokens: number): boolean {
    const limit = enqueuedTokenLimitFor(f, model);
    if (limit === undefined) return false;
    const enqueued = this.#deps.store.enqueuedTokens(model);
    if (enqueued + tokens <= limit) return false;
    sb.run.refusedForTokens = true;
    this.#failValidation(sb, [
      {
        code: 'token_limit_exceeded',
        message: `Enqueued token limit reached for ${model}. Limit: ${limit} enqueued tokens; ${enqueued} are enqueued and this batch has ${tokens}. Please try again once some in_progress batches have been completed.`,
        param: null,
        line: null,
      },
    ]);
    return true;
  }

  /**
   * The `batch-error-line` quirk: the batch "completes" having run nothing, and its only error line
   * carries a custom_id of the server's own ("turn") instead of naming the input's lines.
   */
  #failAsErrorLine(sb: StoredBatch, lines: number): void {
    const text = `${JSON.stringify({
      id: `batch_req_${sb.batch.id.replace(/^batch_/, '').slice(0, 24)}`,
      custom_id: 'turn',
      response: null,
      error: {
        code: 'token_limit_exceeded',
        message: 'Enqueued token limit reached for this model. Try again later.',
      },
    })}\n`;
    fs.writeFileSync(this.#deps.store.partPath(sb.batch.id, 'error'), text);
    sb.run.errorBytes = Buffer.byteLength(text);
    sb.batch.in_progress_at = nowSeconds();
    sb.batch.request_counts = { total: lines, completed: 0, failed: lines };
    this.#finish(sb, 'completed');
  }

  /** How many processed lines trigger expiry for this batch, or null when it does not expire. */
  #expiryPoint(sb: StoredBatch, f: ResolvedFaults): number | null {
    if (nowSeconds() >= sb.batch.expires_at) return sb.run.processedLines;
    if (draw(f.seed, 'expire', sb.run.inputSha256, sb.run.contentAttempt) >= f.expireRate) return null;
    return Math.floor(f.expireAfterFraction * sb.batch.request_counts.total);
  }

  async #process(sb: StoredBatch): Promise<void> {
    const { store } = this.#deps;
    const out = openPart(store.partPath(sb.batch.id, 'output'), sb.run.outputBytes);
    const err = openPart(store.partPath(sb.batch.id, 'error'), sb.run.errorBytes);
    const lines = readLines(store.contentPath(sb.batch.input_file_id), { start: sb.run.inputOffset });
    let budget = 0;
    let last = Date.now();
    let saved = Date.now();
    try {
      while (!this.#stopped && sb.batch.status === 'in_progress') {
        const f = this.#deps.faults();
        const expireAt = sb.run.expiring ? sb.run.processedLines : this.#expiryPoint(sb, f);
        if (expireAt !== null && sb.run.processedLines >= expireAt) {
          this.#checkpoint(sb, out, err);
          sb.run.expiring = true;
          await this.#expireRest(sb, lines, err);
          if (!this.#stopped) this.#finish(sb, 'expired');
          return;
        }
        if (sb.run.processedLines >= sb.batch.request_counts.total) {
          this.#checkpoint(sb, out, err);
          sb.batch.status = 'finalizing';
          sb.batch.finalizing_at = nowSeconds();
          this.#save(sb);
          return;
        }
        const now = Date.now();
        budget = f.perLineMs > 0 ? Math.min(budget + (now - last) / f.perLineMs, CHUNK * 4) : CHUNK;
        last = now;
        let n = Math.min(Math.floor(budget), CHUNK, sb.batch.request_counts.total - sb.run.processedLines);
        if (expireAt !== null) n = Math.min(n, expireAt - sb.run.processedLines);
        if (n > 0) {
          budget -= n;
          await this.#processLines(sb, lines, n, out, err, f);
          updateCounts(sb);
          if (Date.now() - saved >= CHECKPOINT_MS || out.pending + err.pending >= this.#pendingShare()) {
            this.#checkpoint(sb, out, err);
            saved = Date.now();
          }
        }
        await this.#sleep(f.perLineMs > 0 ? TICK_MS : 0);
      }
    } finally {
      this.#checkpoint(sb, out, err);
      out.close();
      err.close();
      await lines.return(undefined);
    }
  }

  async #processLines(
    sb: StoredBatch,
    lines: AsyncGenerator<Line>,
    n: number,
    out: Part,
    err: Part,
    f: ResolvedFaults,
  ): Promise<void> {
    const { submissions } = this.#deps.store;
    const inOutput = f.quirks.includes('failed-lines-in-output');
    const codeFields = f.quirks.includes('error-code-fields');
    const malformed = f.quirks.includes('malformed-output-line');
    for (let i = 0; i < n; i++) {
      const next = await lines.next();
      if (next.done) break;
      // Validation passed, so every line parses; only custom_id and body are needed.
      const row = JSON.parse(next.value.text!.toString('utf8')) as {
        custom_id: string;
        body: Record<string, unknown>;
      };
      const attempt = submissions.attemptThenRecord(row.custom_id, sb.seq);
      const digest = requestDigest(sb.batch.id, row.custom_id);
      const outcome = decideLine(f, sb.batch.endpoint, row.custom_id, attempt, row.body, digest);
      const whole = resultLine(digest, row.custom_id, outcome, codeFields);
      const text = malformed ? damagedResultLine(whole, sb.run.processedLines) : whole;
      const key = orderKey(digest);
      if (outcome.kind === 'success') {
        out.add(text, key);
        sb.run.succeeded++;
      } else if (inOutput) {
        out.add(text, key);
        sb.run.failedInOutput++;
      } else {
        err.add(text, key);
        sb.run.failedLines++;
      }
      sb.run.processedLines++;
      sb.run.inputOffset = next.value.end;
    }
  }

  /** Writes every line not processed yet to the error file as batch_expired (resumable too). */
  async #expireRest(sb: StoredBatch, lines: AsyncGenerator<Line>, err: Part): Promise<void> {
    const codeFields = this.#deps.faults().quirks.includes('error-code-fields');
    const outcome = {
      kind: 'error',
      code: 'batch_expired',
      message: 'This request could not be executed before the completion window expired.',
    } as const;
    for (;;) {
      const next = await lines.next();
      if (next.done) break;
      const row = JSON.parse(next.value.text!.toString('utf8')) as { custom_id: string };
      const digest = requestDigest(sb.batch.id, row.custom_id);
      err.add(resultLine(digest, row.custom_id, outcome, codeFields), orderKey(digest));
      sb.run.failedLines++;
      sb.run.inputOffset = next.value.end;
      if (err.pending >= this.#pendingShare()) this.#checkpoint(sb, null, err);
    }
    this.#checkpoint(sb, null, err);
  }

  /** Ends the batch with its result files (result-files.ts). */
  #finish(sb: StoredBatch, final: Final): void {
    finishBatch(this.#deps, sb, final, (b) => this.#save(b));
  }

  /** Appends pending lines, then records submissions, then saves the batch: in that order, so a
   * crash at any point leaves a checkpoint no newer than the files it describes. */
  #checkpoint(sb: StoredBatch, out: Part | null, err: Part): void {
    if (out) sb.run.outputBytes += out.flush();
    sb.run.errorBytes += err.flush();
    this.#deps.store.submissions.flush();
    updateCounts(sb);
    this.#save(sb);
  }
}

function updateCounts(sb: StoredBatch): void {
  const r = sb.run;
  sb.batch.request_counts = {
    total: sb.batch.request_counts.total,
    completed: r.succeeded + r.failedInOutput,
    failed: r.failedLines,
  };
}
