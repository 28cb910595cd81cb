// The rules for one request line (docs/providers.md): what the provider would refuse, said with
// the field and the fix, plus the line's group key (model, thinking) and its rewrite for dry runs and
// --thinking. Pure: bytes and options in, a verdict out. Uniqueness of custom_id needs the whole
// input, so it is decided later (id-registry.ts); this computes the id's hash for it.
// The rules themselves: line-syntax.ts (not JSON), line-fields.ts (the fields), line-rewrite.ts.
import { isUtf8 } from 'node:buffer';
import { formatBytes } from '../common/units.ts';
import type { AnswerLookup } from '../storage/answers.ts';
import { FieldRules, type CustomIdFacts } from './line-fields.ts';
import { LineProblems } from './line-problems.ts';
import { LineRewriter } from './line-rewrite.ts';
import { syntaxProblem } from './line-syntax.ts';
import {
  F_CUSTOM_ID,
  F_MODEL,
  F_THINK,
  FIELD_PATHS,
  T_ARRAY,
  T_FALSE,
  T_OBJECT,
  T_TRUE,
  TYPE_NAMES,
  newScan,
  type Scan,
} from './scan-result.ts';
import { makeScanner } from './scan.ts';
import { ScannedFields } from './scanned-fields.ts';
import type { ScanFns } from './simd.ts';

/** What a line is checked against; plain data so it can be sent to worker threads. */
export interface LineRules {
  endpoint: string;
  maxLineBytes: number;
  /** Dry run: every line's body.model and url are replaced. */
  model?: string;
  url?: string;
  thinking?: 'on' | 'off' | 'keep';
  thinkingBudget?: number;
  /** Test hook: keep only these bits of the custom_id hash, to force collisions. */
  idHashMask?: number;
  /** With reuse: the provider scope each valid line's request key is computed in (chunk.ts). */
  keyScope?: string;
  /** With reuse: where the scan threads read the stored answers of their lines' keys. */
  answers?: AnswerLookup;
}

export const THINK_NULL = 0,
  THINK_ON = 1,
  THINK_OFF = 2;

/** The verdict on one line; one object is reused from line to line. */
export interface LineVerdict extends CustomIdFacts {
  ok: boolean;
  code: string;
  message: string;
  model: string;
  thinking: number;
  /** Bytes of the line as it goes into a shard (after rewrite), without the newline. */
  outLen: number;
  /** When the line was rewritten: its new bytes are out[0, outLen). */
  rewritten: boolean;
}

export function newVerdict(): LineVerdict {
  return {
    ok: false,
    code: '',
    message: '',
    hasId: false,
    idHash: 0,
    idHash2: 0,
    idStart: 0,
    idEnd: 0,
    idEsc: false,
    customId: undefined,
    model: '',
    thinking: THINK_NULL,
    outLen: 0,
    rewritten: false,
  };
}

const THINKING_DEFAULT_ON = /^qwen3\.[567]/;

/** Models that think unless told not to (docs/providers.md, Thinking mode). */
export function thinksByDefault(model: string): boolean {
  return THINKING_DEFAULT_ON.test(model);
}

/** The strings of the last few models seen, by their bytes: one string per model, not one per line. */
class RecentModels {
  private readonly bytes: Uint8Array[] = [];
  private readonly text: string[] = [];
  private readonly u8: Uint8Array;
  private readonly fields: ScannedFields;

  constructor(u8: Uint8Array, fields: ScannedFields) {
    this.u8 = u8;
    this.fields = fields;
  }

  /** body.model of the line last scanned. */
  model(s: Scan): string {
    const a = s.start[F_MODEL]!;
    const b = s.end[F_MODEL]!;
    if (s.esc[F_MODEL] === 0) {
      for (let k = 0; k < this.bytes.length; k++) {
        if (this.fields.sameBytes(a, b, this.bytes[k]!)) return this.text[k]!;
      }
    }
    const model = this.fields.text(F_MODEL);
    if (s.esc[F_MODEL] === 0) {
      if (this.bytes.length === 8) {
        this.bytes.pop();
        this.text.pop();
      }
      this.bytes.unshift(this.u8.slice(a, b));
      this.text.unshift(model);
    }
    return model;
  }
}

/** A checker bound to one byte array (the scan memory) and one set of rules. */
export function makeLineChecker(
  u8: Uint8Array,
  fns: ScanFns,
  rules: LineRules,
): (v: LineVerdict, start: number, end: number, utf8Checked: boolean) => Uint8Array {
  const scan = makeScanner(u8, fns);
  const s = newScan();
  const fields = new ScannedFields(s, u8);
  const problems = new LineProblems();
  const fieldRules = new FieldRules(u8, fields, problems, rules.endpoint, rules.idHashMask ?? 0xffffffff);
  const rewriter = new LineRewriter(u8, rules);
  const models = new RecentModels(u8, fields);
  const thinkingOverride =
    rules.thinking === 'on' ? THINK_ON : rules.thinking === 'off' ? THINK_OFF : THINK_NULL;

  /** The rules of a line that scanned as JSON; sets v.outLen when it is rewritten. */
  function objectRules(v: LineVerdict, start: number, end: number, utf8Checked: boolean): void {
    if (!utf8Checked && !isUtf8(u8.subarray(start, end))) {
      problems.add('invalid_utf8', 'line is not valid UTF-8 text: save the input as UTF-8');
      return;
    }
    if (s.rootType !== T_OBJECT) {
      problems.add(
        'not_an_object',
        `line is ${s.rootType === T_ARRAY ? 'a JSON array' : `a JSON scalar (${TYPE_NAMES[s.rootType]})`}, not an object: each line must be one request object {"custom_id":...,"method":"POST","url":...,"body":{...}}`,
      );
      return;
    }
    if (s.dupKey >= 0) problems.add('duplicate_key', `${FIELD_PATHS[s.dupKey]} appears twice: keep one`);
    fieldRules.check(v);
    if (!problems.found && rewriter.active) {
      v.outLen = rewriter.rewrite(s, start, end);
      v.rewritten = true;
    }
    if (v.outLen > rules.maxLineBytes) {
      problems.add(
        'line_too_large',
        `line is ${formatBytes(v.outLen)} (${v.outLen} bytes), over the limit of ${formatBytes(rules.maxLineBytes)} per line (--max-line-bytes): shorten the request`,
      );
    }
  }

  return function check(v: LineVerdict, start: number, end: number, utf8Checked: boolean): Uint8Array {
    v.ok = false;
    v.hasId = false;
    v.customId = undefined;
    v.rewritten = false;
    v.thinking = THINK_NULL;
    v.outLen = end - start;
    problems.reset();
    scan(s, start, end);
    if (s.err !== 0) syntaxProblem(problems, s, u8, start, end, utf8Checked);
    else objectRules(v, start, end, utf8Checked);
    if (v.hasId && problems.found && v.customId === undefined) v.customId = fields.text(F_CUSTOM_ID);
    if (problems.found) {
      v.code = problems.code;
      v.message = problems.messages.join('; ');
      return rewriter.out;
    }
    v.ok = true;
    // The group key: the model as it goes out, and the thinking mode.
    v.model = rules.model !== undefined ? rules.model : models.model(s);
    v.thinking =
      thinkingOverride !== THINK_NULL
        ? thinkingOverride
        : s.type[F_THINK] === T_TRUE
          ? THINK_ON
          : s.type[F_THINK] === T_FALSE
            ? THINK_OFF
            : THINK_NULL;
    return rewriter.out;
  };
}
