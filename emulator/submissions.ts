// How many earlier batches processed each custom_id: the "attempt" that, with the seed, decides a
// line's fate. Kept as an append-only log of (batch seq, id hash) so it survives restarts, and
// counted by batch seq so a batch that resumes after a restart sees the same attempt numbers again.
import fs from 'node:fs';
import { hash48 } from './random.ts';
import { readLines } from './lines.ts';

export class SubmissionLog {
  readonly #path: string;
  /** id hash → seqs of the batches that processed it (a bare number for the common single case). */
  readonly #seen = new Map<number, number | number[]>();
  #pending: string[] = [];

  constructor(path: string) {
    this.#path = path;
  }

  async load(): Promise<void> {
    if (!fs.existsSync(this.#path)) return;
    for await (const line of readLines(this.#path, { maxLineBytes: 64 })) {
      const [seq, key] = (line.text?.toString('latin1') ?? '').split(' ');
      if (seq && key) this.#add(parseInt(key, 36), Number(seq));
    }
  }

  /**
   * How many batches created before batch `seq` processed `customId`, then notes that batch `seq`
   * did (idempotent, so a resumed batch may record again).
   */
  attemptThenRecord(customId: string, seq: number): number {
    const key = hash48(customId);
    const attempts = this.#before(key, seq);
    this.#record(key, seq);
    return attempts;
  }

  #before(key: number, seq: number): number {
    const v = this.#seen.get(key);
    if (v === undefined) return 0;
    if (typeof v === 'number') return v < seq ? 1 : 0;
    return v.filter((s) => s < seq).length;
  }

  #record(key: number, seq: number): void {
    if (this.#add(key, seq)) this.#pending.push(`${seq} ${key.toString(36)}\n`);
  }

  /** Appends what was recorded since the last flush; call before checkpointing a batch's progress. */
  flush(): void {
    if (this.#pending.length === 0) return;
    fs.appendFileSync(this.#path, this.#pending.join(''));
    this.#pending = [];
  }

  #add(key: number, seq: number): boolean {
    const v = this.#seen.get(key);
    if (v === undefined) {
      this.#seen.set(key, seq);
      return true;
    }
    if (typeof v === 'number') {
      if (v === seq) return false;
      this.#seen.set(key, [v, seq]);
      return true;
    }
    if (v.includes(seq)) return false;
    v.push(seq);
    return true;
  }
}
