// The rewrite of an accepted line for a dry run (model and url replaced) and for --thinking /
// --thinking-budget (body.enable_thinking / body.thinking_budget set, or inserted at the start of
// body): byte edits at the positions the scan recorded, the rest of the line copied as it is.
import type { LineRules } from './line.ts';
import { F_BODY, F_BUDGET, F_MODEL, F_THINK, F_URL, T_NONE, type Scan } from './scan-result.ts';

interface Edit {
  from: number;
  to: number;
  bytes: Uint8Array;
}

const enc = (x: unknown): Uint8Array => Buffer.from(JSON.stringify(x), 'utf8');

export class LineRewriter {
  /** The last rewritten line is out[0, length returned by rewrite). Grows as lines need. */
  out: Uint8Array;
  /** Whether the rules ask for any rewrite at all. */
  readonly active: boolean;
  private readonly u8: Uint8Array;
  private readonly edits: Edit[] = [];
  private readonly modelEdit: Uint8Array | undefined;
  private readonly urlEdit: Uint8Array | undefined;
  /** Thinking to set: true, false, or undefined to leave it. */
  private readonly thinking: boolean | undefined;
  private readonly thinkValue: Uint8Array;
  private readonly budget: number | undefined;
  private readonly budgetValue: Uint8Array | undefined;

  constructor(u8: Uint8Array, rules: LineRules) {
    this.u8 = u8;
    this.thinking = rules.thinking === 'on' ? true : rules.thinking === 'off' ? false : undefined;
    this.budget = rules.thinkingBudget;
    this.active =
      rules.model !== undefined ||
      rules.url !== undefined ||
      this.thinking !== undefined ||
      rules.thinkingBudget !== undefined;
    this.out = new Uint8Array(this.active ? 1 << 16 : 0);
    this.modelEdit = rules.model !== undefined ? enc(rules.model) : undefined;
    this.urlEdit = rules.url !== undefined ? enc(rules.url) : undefined;
    this.thinkValue = this.thinking === true ? enc(true) : enc(false);
    this.budgetValue = rules.thinkingBudget !== undefined ? enc(rules.thinkingBudget) : undefined;
  }

  /** Rewrites line u8[start, end), scanned into `s`, into `out`; returns its new length. */
  rewrite(s: Scan, start: number, end: number): number {
    const edits = this.edits;
    edits.length = 0;
    if (this.urlEdit) edits.push({ from: s.start[F_URL]! - 1, to: s.end[F_URL]! + 1, bytes: this.urlEdit });
    if (this.modelEdit)
      edits.push({ from: s.start[F_MODEL]! - 1, to: s.end[F_MODEL]! + 1, bytes: this.modelEdit });
    const bodyOpen = s.start[F_BODY]! + 1;
    if (this.thinking !== undefined) {
      if (s.type[F_THINK] !== T_NONE)
        edits.push({ from: s.start[F_THINK]!, to: s.end[F_THINK]!, bytes: this.thinkValue });
      else
        edits.push({
          from: bodyOpen,
          to: bodyOpen,
          bytes: enc({ enable_thinking: this.thinking }).subarray(1),
        });
    }
    if (this.budgetValue) {
      if (s.type[F_BUDGET] !== T_NONE)
        edits.push({ from: s.start[F_BUDGET]!, to: s.end[F_BUDGET]!, bytes: this.budgetValue });
      else
        edits.push({
          from: bodyOpen,
          to: bodyOpen,
          bytes: enc({ thinking_budget: this.budget }).subarray(1),
        });
    }
    return this.apply(start, end);
  }

  /** Copies u8[start, end) into `out` with the edits applied, in position order. */
  private apply(start: number, end: number): number {
    const edits = this.edits;
    const u8 = this.u8;
    edits.sort((a, b) => a.from - b.from);
    let size = end - start;
    for (const e of edits) size += e.bytes.length - (e.to - e.from);
    if (this.out.length < size) this.out = new Uint8Array(Math.max(size, this.out.length * 2));
    const out = this.out;
    let o = 0;
    let at = start;
    for (const e of edits) {
      out.set(u8.subarray(at, e.from), o);
      o += e.from - at;
      // An insertion at the body's '{' reads `"key":value}`: turn its '}' into ','.
      if (e.from === e.to) {
        out.set(e.bytes, o);
        out[o + e.bytes.length - 1] = 0x2c;
      } else out.set(e.bytes, o);
      o += e.bytes.length;
      at = e.to;
    }
    out.set(u8.subarray(at, end), o);
    return o + (end - at);
  }
}
