// The rules for one request line (docs/providers.md): what the provider would refuse, said with
// the field and the fix, plus the line's group key (model, thinking) and its rewrite for dry runs and
// --thinking. Pure: bytes and options in, a verdict out. Uniqueness of custom_id needs the whole
// input, so it is decided later (ids.ts); this computes the id's hash for it.
import { isUtf8 } from 'node:buffer';
import { formatBytes } from '../common/units.ts';
import {
  E_CONTROL,
  E_DEPTH,
  E_ESCAPE,
  E_NUL,
  E_NUMBER,
  E_TRAILING,
  E_TRUNCATED,
  F_BODY,
  F_BUDGET,
  F_CUSTOM_ID,
  F_EXTRA_THINK,
  F_METHOD,
  F_MODEL,
  F_STREAM,
  F_THINK,
  F_URL,
  FIELD_PATHS,
  MAX_DEPTH,
  T_ARRAY,
  T_FALSE,
  T_NONE,
  T_OBJECT,
  T_STRING,
  T_TRUE,
  TYPE_NAMES,
  decodeJsonString,
  makeScanner,
  newScan,
} from './scan.ts';
import type { ScanFns } from './simd.ts';

/** The longest custom_id the providers accept, in characters. */
export const MAX_CUSTOM_ID_CHARS = 256;

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
}

export const THINK_NULL = 0,
  THINK_ON = 1,
  THINK_OFF = 2;

/** The verdict on one line; one object is reused from line to line. */
export interface LineVerdict {
  ok: boolean;
  code: string;
  message: string;
  /** Whether the line carries a usable custom_id (a non-empty string within the limit). */
  hasId: boolean;
  idHash: number;
  idHash2: number;
  /** The id's raw bytes, inside its quotes; `idEsc` when they hold escapes. */
  idStart: number;
  idEnd: number;
  idEsc: boolean;
  /** Decoded custom_id when it is cheap or the line is rejected (for rejected.jsonl). */
  customId: string | undefined;
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

/** FNV-1a over the id's UTF-8 bytes with murmur3's finalizer: the top bits index the id table. */
export function hashBytes(u8: Uint8Array, start: number, end: number, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = start; i < end; i++) h = Math.imul(h ^ u8[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The second, independent hash (a different FNV seed): its bits are the table's fingerprint. */
export const SEED2 = 0x2545f491;

export function hashString(id: string, seed?: number): number {
  const b = Buffer.from(id, 'utf8');
  return hashBytes(b, 0, b.length, seed);
}

const THINKING_DEFAULT_ON = /^qwen3\.[567]/;

/** Models that think unless told not to (docs/providers.md, Thinking mode). */
export function thinksByDefault(model: string): boolean {
  return THINKING_DEFAULT_ON.test(model);
}

const quote = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);

/** A short printable view of a line's start, for messages about lines that are not JSON. */
function preview(u8: Uint8Array, start: number, end: number): string {
  const text = Buffer.from(u8.buffer, u8.byteOffset + start, Math.min(end - start, 40)).toString('utf8');
  return JSON.stringify(text + (end - start > 40 ? '...' : ''));
}

const byteName = (c: number | undefined): string =>
  c === undefined
    ? 'end of line'
    : c >= 0x21 && c < 0x7f
      ? `'${String.fromCharCode(c)}'`
      : `byte 0x${c.toString(16).padStart(2, '0')}`;

function looksLikeCsv(u8: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end && (u8[i] === 0x20 || u8[i] === 0x09)) i++;
  if (u8[i] === 0x7b || u8[i] === 0x5b) return false;
  for (let j = i; j < end; j++) if (u8[j] === 0x2c || u8[j] === 0x3b) return true;
  return false;
}

const CSV_HINT =
  'this looks like CSV, not JSONL: give the file a .csv extension and convert it with --prompt-column, --id-column and --model';

/** A checker bound to one byte array (the scan memory) and one set of rules. */
export function makeLineChecker(
  u8: Uint8Array,
  fns: ScanFns,
  rules: LineRules,
): (v: LineVerdict, start: number, end: number, utf8Checked: boolean) => Uint8Array {
  const scan = makeScanner(u8, fns);
  const s = newScan();
  const endpointBytes = Buffer.from(rules.endpoint, 'utf8');
  const mask = rules.idHashMask ?? 0xffffffff;
  const thinkingOverride =
    rules.thinking === 'on' ? THINK_ON : rules.thinking === 'off' ? THINK_OFF : THINK_NULL;
  const rewriting =
    rules.model !== undefined ||
    rules.url !== undefined ||
    thinkingOverride !== THINK_NULL ||
    rules.thinkingBudget !== undefined;
  let out = new Uint8Array(rewriting ? 1 << 16 : 0);
  // Recent models' bytes and strings: one string per model, not one per line.
  const modelBytes: Uint8Array[] = [];
  const modelText: string[] = [];
  const problems: string[] = [];
  let firstCode = '';

  const add = (code: string, message: string): void => {
    if (!firstCode) firstCode = code;
    problems.push(message);
  };
  const sameBytes = (a: number, b: number, ref: Uint8Array): boolean => {
    if (b - a !== ref.length) return false;
    for (let k = 0; k < ref.length; k++) if (u8[a + k] !== ref[k]) return false;
    return true;
  };
  const text = (f: number): string =>
    s.esc[f]
      ? decodeJsonString(u8, s.start[f]!, s.end[f]!)
      : Buffer.from(u8.buffer, u8.byteOffset + s.start[f]!, s.end[f]! - s.start[f]!).toString('utf8');
  const typeName = (f: number): string => TYPE_NAMES[s.type[f]!]!;
  const ascii = (a: number, b: number): boolean => {
    for (let k = a; k < b; k++) if (u8[k]! >= 0x80) return false;
    return true;
  };

  function syntaxProblem(start: number, end: number, utf8Checked: boolean): void {
    const at = s.errPos - start + 1;
    if (s.err === E_NUL) {
      add(
        'nul_byte',
        `line has a NUL byte at byte ${at}: the file looks binary or corrupted; remove NUL bytes`,
      );
      return;
    }
    const csv = looksLikeCsv(u8, start, end);
    if (!utf8Checked && !isUtf8(u8.subarray(start, end))) {
      add(
        'invalid_utf8',
        'line is not valid UTF-8 text (the file looks binary): save the input as UTF-8 JSONL',
      );
      return;
    }
    if (s.err === E_TRUNCATED) {
      add(
        'truncated_json',
        `line ends before its JSON does (after ${end - start} bytes): the line looks cut off; each request must be one complete JSON object on one line${csv ? `; ${CSV_HINT}` : ''}`,
      );
      return;
    }
    const what =
      s.err === E_CONTROL
        ? `a raw control character (${byteName(u8[s.errPos])}) inside a string at byte ${at}: escape it, e.g. \\n or \\t`
        : s.err === E_ESCAPE
          ? `a bad escape sequence at byte ${at}`
          : s.err === E_NUMBER
            ? `a malformed number at byte ${at}`
            : s.err === E_TRAILING
              ? `extra text after the JSON value at byte ${at} (${byteName(u8[s.errPos])}): put one request per line`
              : s.err === E_DEPTH
                ? `nesting deeper than ${MAX_DEPTH} levels`
                : `unexpected ${byteName(u8[s.errPos])} at byte ${at}`;
    add(
      'invalid_json',
      `line is not valid JSON: ${what}${csv ? `; ${CSV_HINT}` : `; the line starts ${preview(u8, start, end)}`}`,
    );
  }

  function fieldRules(v: LineVerdict): void {
    // custom_id
    const idType = s.type[F_CUSTOM_ID]!;
    if (idType === T_NONE) {
      add('missing_custom_id', 'custom_id is missing: add a unique "custom_id" string to the request');
    } else if (idType !== T_STRING) {
      add(
        'invalid_custom_id',
        `custom_id must be a string, got ${typeName(F_CUSTOM_ID)}: write it in quotes, e.g. "custom_id":"req-1"`,
      );
    } else {
      const a = s.start[F_CUSTOM_ID]!;
      const b = s.end[F_CUSTOM_ID]!;
      const esc = s.esc[F_CUSTOM_ID] === 1;
      let chars = b - a;
      let id: string | undefined;
      if (esc || chars > MAX_CUSTOM_ID_CHARS || !ascii(a, b)) {
        id = text(F_CUSTOM_ID);
        chars = 0;
        for (const _ of id) chars++;
      }
      if (chars === 0) {
        add('invalid_custom_id', 'custom_id is empty: give each request a unique, non-empty custom_id');
      } else if (chars > MAX_CUSTOM_ID_CHARS) {
        add(
          'custom_id_too_long',
          `custom_id is ${chars} characters, over the limit of ${MAX_CUSTOM_ID_CHARS}: shorten it`,
        );
        v.customId = id;
      } else {
        v.hasId = true;
        v.idStart = a;
        v.idEnd = b;
        v.idEsc = esc;
        v.customId = id;
        v.idHash = (esc ? hashString(id!) : hashBytes(u8, a, b)) & mask;
        v.idHash2 = (esc ? hashString(id!, SEED2) : hashBytes(u8, a, b, SEED2)) & mask;
      }
    }
    // method
    if (s.type[F_METHOD] === T_NONE) {
      add('invalid_method', 'method is missing: add "method":"POST"');
    } else if (
      s.type[F_METHOD] !== T_STRING ||
      (s.end[F_METHOD]! - s.start[F_METHOD]! === 4 && s.esc[F_METHOD] === 0
        ? !(
            u8[s.start[F_METHOD]!] === 0x50 &&
            u8[s.start[F_METHOD]! + 1] === 0x4f &&
            u8[s.start[F_METHOD]! + 2] === 0x53 &&
            u8[s.start[F_METHOD]! + 3] === 0x54
          )
        : text(F_METHOD) !== 'POST')
    ) {
      const got = s.type[F_METHOD] === T_STRING ? quote(text(F_METHOD)) : typeName(F_METHOD);
      add('invalid_method', `method is ${got}: batch requests must use "method":"POST"`);
    }
    // url
    if (s.type[F_URL] === T_NONE) {
      add('invalid_url', `url is missing: add "url":${JSON.stringify(rules.endpoint)} (the job's endpoint)`);
    } else if (
      s.type[F_URL] !== T_STRING ||
      (s.esc[F_URL] === 0
        ? !sameBytes(s.start[F_URL]!, s.end[F_URL]!, endpointBytes)
        : text(F_URL) !== rules.endpoint)
    ) {
      const got = s.type[F_URL] === T_STRING ? quote(text(F_URL)) : typeName(F_URL);
      add(
        'invalid_url',
        `url is ${got} but the job's endpoint is ${JSON.stringify(rules.endpoint)}: set "url":${JSON.stringify(rules.endpoint)}, or run with --endpoint ${s.type[F_URL] === T_STRING ? text(F_URL) : '<endpoint>'} (one endpoint per job)`,
      );
    }
    // body
    if (s.type[F_BODY] === T_NONE) {
      add('missing_body', 'body is missing: put the request (model, messages, ...) in a "body" object');
      return;
    }
    if (s.type[F_BODY] !== T_OBJECT) {
      add('invalid_body', `body must be a JSON object, got ${typeName(F_BODY)}: write "body":{"model":...}`);
      return;
    }
    if (s.type[F_MODEL] === T_NONE) {
      add('missing_model', 'body.model is missing: add "model" (e.g. "qwen-plus") inside body');
    } else if (s.type[F_MODEL] !== T_STRING) {
      add(
        'invalid_model',
        `body.model must be a string, got ${typeName(F_MODEL)}: write e.g. "model":"qwen-plus"`,
      );
    } else if (s.end[F_MODEL] === s.start[F_MODEL]) {
      add('missing_model', 'body.model is empty: name the model, e.g. "model":"qwen-plus"');
    }
    if (s.type[F_STREAM] === T_TRUE) {
      add(
        'streaming_unsupported',
        'body.stream is true: batch requests cannot stream; remove "stream" or set it to false',
      );
    }
    const think = s.type[F_THINK]!;
    if (think !== T_NONE && think !== T_TRUE && think !== T_FALSE) {
      add(
        'invalid_enable_thinking',
        `body.enable_thinking must be true or false, got ${think === T_STRING ? quote(text(F_THINK)) : typeName(F_THINK)}`,
      );
    }
    if (s.type[F_EXTRA_THINK] !== T_NONE) {
      add(
        'thinking_in_extra_body',
        'body.extra_body.enable_thinking has no effect in a batch file (extra_body is an SDK mechanism): move enable_thinking to the top level of body, beside "model"',
      );
    }
  }

  // Edits for dry run and --thinking, applied in position order into `out`.
  const edits: { from: number; to: number; bytes: Uint8Array }[] = [];
  const enc = (x: unknown): Uint8Array => Buffer.from(JSON.stringify(x), 'utf8');
  const modelEdit = rules.model !== undefined ? enc(rules.model) : undefined;
  const urlEdit = rules.url !== undefined ? enc(rules.url) : undefined;
  const thinkValue = thinkingOverride === THINK_ON ? enc(true) : enc(false);
  const budgetValue = rules.thinkingBudget !== undefined ? enc(rules.thinkingBudget) : undefined;

  function rewrite(start: number, end: number): number {
    edits.length = 0;
    if (urlEdit) edits.push({ from: s.start[F_URL]! - 1, to: s.end[F_URL]! + 1, bytes: urlEdit });
    if (modelEdit) edits.push({ from: s.start[F_MODEL]! - 1, to: s.end[F_MODEL]! + 1, bytes: modelEdit });
    const bodyOpen = s.start[F_BODY]! + 1;
    if (thinkingOverride !== THINK_NULL) {
      if (s.type[F_THINK] !== T_NONE)
        edits.push({ from: s.start[F_THINK]!, to: s.end[F_THINK]!, bytes: thinkValue });
      else
        edits.push({
          from: bodyOpen,
          to: bodyOpen,
          bytes: enc({ enable_thinking: thinkingOverride === THINK_ON }).subarray(1),
        });
    }
    if (budgetValue) {
      if (s.type[F_BUDGET] !== T_NONE)
        edits.push({ from: s.start[F_BUDGET]!, to: s.end[F_BUDGET]!, bytes: budgetValue });
      else
        edits.push({
          from: bodyOpen,
          to: bodyOpen,
          bytes: enc({ thinking_budget: rules.thinkingBudget }).subarray(1),
        });
    }
    edits.sort((a, b) => a.from - b.from);
    let size = end - start;
    for (const e of edits) size += e.bytes.length - (e.to - e.from);
    if (out.length < size) out = new Uint8Array(Math.max(size, out.length * 2));
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

  return function check(v: LineVerdict, start: number, end: number, utf8Checked: boolean): Uint8Array {
    v.ok = false;
    v.hasId = false;
    v.customId = undefined;
    v.rewritten = false;
    v.thinking = THINK_NULL;
    v.outLen = end - start;
    problems.length = 0;
    firstCode = '';
    scan(s, start, end);
    if (s.err !== 0) {
      syntaxProblem(start, end, utf8Checked);
    } else if (!utf8Checked && !isUtf8(u8.subarray(start, end))) {
      add('invalid_utf8', 'line is not valid UTF-8 text: save the input as UTF-8');
    } else if (s.rootType !== T_OBJECT) {
      add(
        'not_an_object',
        `line is ${s.rootType === T_ARRAY ? 'a JSON array' : `a JSON scalar (${TYPE_NAMES[s.rootType]})`}, not an object: each line must be one request object {"custom_id":...,"method":"POST","url":...,"body":{...}}`,
      );
    } else {
      if (s.dupKey >= 0) {
        add('duplicate_key', `${FIELD_PATHS[s.dupKey]} appears twice: keep one`);
      }
      fieldRules(v);
      if (problems.length === 0 && rewriting) {
        v.outLen = rewrite(start, end);
        v.rewritten = true;
      }
      {
        if (v.outLen > rules.maxLineBytes) {
          add(
            'line_too_large',
            `line is ${formatBytes(v.outLen)} (${v.outLen} bytes), over the limit of ${formatBytes(rules.maxLineBytes)} per line (--max-line-bytes): shorten the request`,
          );
        }
      }
    }
    if (v.hasId && problems.length > 0 && v.customId === undefined) v.customId = text(F_CUSTOM_ID);
    if (problems.length > 0) {
      v.code = firstCode;
      v.message = problems.join('; ');
      return out;
    }
    v.ok = true;
    // The group key: the model as it goes out, and the thinking mode.
    if (modelEdit) v.model = rules.model!;
    else {
      const a = s.start[F_MODEL]!;
      const b = s.end[F_MODEL]!;
      let m = -1;
      if (s.esc[F_MODEL] === 0) {
        for (let k = 0; k < modelBytes.length; k++) {
          if (sameBytes(a, b, modelBytes[k]!)) {
            m = k;
            break;
          }
        }
      }
      if (m >= 0) v.model = modelText[m]!;
      else {
        v.model = text(F_MODEL);
        if (s.esc[F_MODEL] === 0) {
          if (modelBytes.length === 8) {
            modelBytes.pop();
            modelText.pop();
          }
          modelBytes.unshift(u8.slice(a, b));
          modelText.unshift(v.model);
        }
      }
    }
    v.thinking =
      thinkingOverride !== THINK_NULL
        ? thinkingOverride
        : s.type[F_THINK] === T_TRUE
          ? THINK_ON
          : s.type[F_THINK] === T_FALSE
            ? THINK_OFF
            : THINK_NULL;
    return out;
  };
}
