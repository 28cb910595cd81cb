// Where refused lines go: every one into rejected.jsonl (written to rejected.jsonl.tmp in ~1 MiB
// writes and renamed when the plan completes), the first `maxProblems` also into the report.
import fs from 'node:fs';
import { roundFiles } from '../storage/layout.ts';
import type { Problem } from './chunk.ts';
import type { PlanProblem } from './types.ts';

const FLUSH_BYTES = 1024 * 1024;

/** The rejected.jsonl entry of a refused line: its problem, or that its custom_id came before. */
export function rejection(
  line: number,
  problem: Problem | undefined,
  dupOf: number,
  customId: string | undefined,
): PlanProblem {
  const dup =
    dupOf > 0
      ? `custom_id ${JSON.stringify(customId)} already appears on line ${dupOf} (only the first occurrence is sent): give this request its own custom_id`
      : '';
  return {
    line,
    code: problem?.code ?? 'duplicate_custom_id',
    message: problem ? (dup ? `${problem.message}; ${dup}` : problem.message) : dup,
    ...(customId !== undefined ? { custom_id: customId } : {}),
  };
}

export class RejectedSink {
  /** Lines refused so far. */
  count = 0;
  /** The first `maxProblems` of them. */
  readonly problems: PlanProblem[] = [];
  private readonly maxProblems: number;
  private readonly outDir: string | undefined;
  private fd: number | undefined;
  private text: string[] = [];
  private bytes = 0;

  /** Without `outDir` (validating only), entries go to the report only. */
  constructor(maxProblems: number, outDir: string | undefined) {
    this.maxProblems = maxProblems;
    this.outDir = outDir;
    if (outDir) this.fd = fs.openSync(`${roundFiles(outDir).rejected()}.tmp`, 'w');
  }

  /** Refuses `line` for `problem`, or as a duplicate of line `dupOf` (> 0), or both. */
  reject(line: number, problem: Problem | undefined, dupOf: number, customId: string | undefined): void {
    this.count++;
    const entry = rejection(line, problem, dupOf, customId);
    if (this.problems.length < this.maxProblems) this.problems.push(entry);
    if (this.fd !== undefined) {
      const text = JSON.stringify(entry) + '\n';
      this.text.push(text);
      this.bytes += text.length;
      if (this.bytes > FLUSH_BYTES) this.flush();
    }
  }

  private flush(): void {
    if (this.fd === undefined || this.text.length === 0) return;
    fs.writeSync(this.fd, this.text.join(''));
    this.text = [];
    this.bytes = 0;
  }

  /**
   * Writes what is left, fsyncs it and renames rejected.jsonl into place (before the manifest, whose
   * folder fsync keeps the new name).
   */
  commit(): void {
    if (this.fd === undefined) return;
    this.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = undefined;
    const rejected = roundFiles(this.outDir!).rejected();
    fs.renameSync(`${rejected}.tmp`, rejected);
  }

  /** Closes the file without completing it (on error). */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
