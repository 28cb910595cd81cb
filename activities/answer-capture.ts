// Collection's side of reuse: the answer of every line that succeeded goes into the answer store
// under its request's key, for later jobs. Whether this job stores answers at all was decided by
// its plan (answers.json in the work folder: a `--no-reuse` job stores none); a work folder
// without that file was planned before reuse existed and stores none either.
import fs from 'node:fs';
import { RequestKeyer, type RequestParts } from '../common/request-key.ts';
import type { AnswerWriter } from '../storage/answers.ts';
import { answersSettingsFile } from '../storage/layout.ts';
import type { Usage } from '../storage/outcome-record.ts';
import type { ActivityDeps } from './deps.ts';
import { logFor } from './log.ts';

/** Keys and models of one unit's request lines, and the writer their answers go to. */
export class AnswerCapture {
  private readonly keys: string[] = [];
  private readonly models: string[] = [];
  private readonly keyer: RequestKeyer;
  private readonly writer: AnswerWriter;
  private readonly deps: ActivityDeps;
  private failed = false;

  private constructor(deps: ActivityDeps, scope: string, writer: AnswerWriter) {
    this.deps = deps;
    this.keyer = new RequestKeyer(scope);
    this.writer = writer;
  }

  /** The store is a cache: a write that fails (disk full) stops storing, never the collection. */
  private guard(what: string, fn: () => void): void {
    if (this.failed) return;
    try {
      fn();
    } catch (err) {
      this.stopStoring(err, `${what} failed; this unit's remaining answers are not stored for reuse`);
    }
  }

  private stopStoring(err: unknown, why: string): void {
    this.failed = true;
    try {
      this.writer.abandon();
    } catch {
      // the warning below is what matters
    }
    logFor(this.deps).warn({ err: (err as Error).message }, `answer store: ${why}`);
  }

  /** A capture for this job's unit, or undefined when its answers are not to be stored. */
  static open(deps: ActivityDeps, workDir: string, jobId: string): AnswerCapture | undefined {
    if (!deps.answers) return undefined;
    let settings: { store?: unknown };
    try {
      settings = JSON.parse(fs.readFileSync(answersSettingsFile(workDir), 'utf8')) as { store?: unknown };
    } catch {
      return undefined;
    }
    if (settings.store !== true) return undefined;
    return new AnswerCapture(deps, deps.answers.scope, deps.answers.store.writer(jobId));
  }

  /** The unit's next request line (in unit order). */
  noteRequest(bytes: Buffer): void {
    const req = JSON.parse(bytes.toString('utf8')) as RequestParts & { body?: { model?: unknown } };
    this.keys.push(this.keyer.keyOf(req).toString('hex'));
    const model = req.body?.model;
    this.models.push(typeof model === 'string' ? model : 'unknown');
  }

  /** Stores the answer of the unit's line `p`. */
  put(p: number, customId: string, usage: Usage | null, result: Uint8Array): void {
    const key = this.keys[p];
    if (key === undefined || result.byteLength === 0) return;
    this.guard('storing an answer', () => {
      this.writer.put(key, { model: this.models[p]!, usage, customId, result });
    });
  }

  /** Commits the unit's answers (on object storage: uploads its segment) and accounts them. */
  async close(): Promise<void> {
    if (this.failed) return;
    try {
      await this.writer.close();
    } catch (err) {
      this.stopStoring(err, "committing this unit's answers failed; they are not stored for reuse");
    }
  }
}
