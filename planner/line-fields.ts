// The rules on a request line's fields, once it is known to be a JSON object: custom_id, method,
// url, body and the body fields a batch cannot take (docs/providers.md). Each broken rule adds a
// problem naming the field and the fix; custom_id's hashes are computed here for the uniqueness
// check that comes later, in input order (id-registry.ts).
import { SEED2, hashBytes, hashString } from './id-hash.ts';
import type { LineProblems } from './line-problems.ts';
import {
  F_BODY,
  F_CUSTOM_ID,
  F_EXTRA_THINK,
  F_METHOD,
  F_MODEL,
  F_STREAM,
  F_THINK,
  F_URL,
  T_FALSE,
  T_NONE,
  T_OBJECT,
  T_STRING,
  T_TRUE,
} from './scan-result.ts';
import type { ScannedFields } from './scanned-fields.ts';

/** The longest custom_id the providers accept, in characters. */
export const MAX_CUSTOM_ID_CHARS = 256;

/** What the rules learn about the line's custom_id (part of the line's verdict). */
export interface CustomIdFacts {
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
}

const quote = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);

export class FieldRules {
  private readonly u8: Uint8Array;
  private readonly f: ScannedFields;
  private readonly problems: LineProblems;
  private readonly endpoint: string;
  private readonly endpointBytes: Uint8Array;
  private readonly mask: number;

  /** Rules over the fields `f` of lines in `u8`, against the job's `endpoint`; `mask` masks id hashes. */
  constructor(u8: Uint8Array, f: ScannedFields, problems: LineProblems, endpoint: string, mask: number) {
    this.u8 = u8;
    this.f = f;
    this.problems = problems;
    this.endpoint = endpoint;
    this.endpointBytes = Buffer.from(endpoint, 'utf8');
    this.mask = mask;
  }

  check(v: CustomIdFacts): void {
    this.customId(v);
    this.method();
    this.url();
    this.body();
  }

  private customId(v: CustomIdFacts): void {
    const { s } = this.f;
    const idType = s.type[F_CUSTOM_ID]!;
    if (idType === T_NONE) {
      this.problems.add(
        'missing_custom_id',
        'custom_id is missing: add a unique "custom_id" string to the request',
      );
      return;
    }
    if (idType !== T_STRING) {
      this.problems.add(
        'invalid_custom_id',
        `custom_id must be a string, got ${this.f.typeName(F_CUSTOM_ID)}: write it in quotes, e.g. "custom_id":"req-1"`,
      );
      return;
    }
    const a = s.start[F_CUSTOM_ID]!;
    const b = s.end[F_CUSTOM_ID]!;
    const esc = s.esc[F_CUSTOM_ID] === 1;
    let chars = b - a;
    let id: string | undefined;
    if (esc || chars > MAX_CUSTOM_ID_CHARS || !this.f.ascii(a, b)) {
      id = this.f.text(F_CUSTOM_ID);
      chars = 0;
      for (const _ of id) chars++;
    }
    if (chars === 0) {
      this.problems.add(
        'invalid_custom_id',
        'custom_id is empty: give each request a unique, non-empty custom_id',
      );
    } else if (chars > MAX_CUSTOM_ID_CHARS) {
      this.problems.add(
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
      v.idHash = (esc ? hashString(id!) : hashBytes(this.u8, a, b)) & this.mask;
      v.idHash2 = (esc ? hashString(id!, SEED2) : hashBytes(this.u8, a, b, SEED2)) & this.mask;
    }
  }

  private method(): void {
    const { s } = this.f;
    const u8 = this.u8;
    if (s.type[F_METHOD] === T_NONE) {
      this.problems.add('invalid_method', 'method is missing: add "method":"POST"');
    } else if (
      s.type[F_METHOD] !== T_STRING ||
      (s.end[F_METHOD]! - s.start[F_METHOD]! === 4 && s.esc[F_METHOD] === 0
        ? !(
            u8[s.start[F_METHOD]!] === 0x50 &&
            u8[s.start[F_METHOD]! + 1] === 0x4f &&
            u8[s.start[F_METHOD]! + 2] === 0x53 &&
            u8[s.start[F_METHOD]! + 3] === 0x54
          )
        : this.f.text(F_METHOD) !== 'POST')
    ) {
      const got = s.type[F_METHOD] === T_STRING ? quote(this.f.text(F_METHOD)) : this.f.typeName(F_METHOD);
      this.problems.add('invalid_method', `method is ${got}: batch requests must use "method":"POST"`);
    }
  }

  private url(): void {
    const { s } = this.f;
    const endpoint = this.endpoint;
    if (s.type[F_URL] === T_NONE) {
      this.problems.add(
        'invalid_url',
        `url is missing: add "url":${JSON.stringify(endpoint)} (the job's endpoint)`,
      );
    } else if (
      s.type[F_URL] !== T_STRING ||
      (s.esc[F_URL] === 0
        ? !this.f.sameBytes(s.start[F_URL]!, s.end[F_URL]!, this.endpointBytes)
        : this.f.text(F_URL) !== endpoint)
    ) {
      const got = s.type[F_URL] === T_STRING ? quote(this.f.text(F_URL)) : this.f.typeName(F_URL);
      this.problems.add(
        'invalid_url',
        `url is ${got} but the job's endpoint is ${JSON.stringify(endpoint)}: set "url":${JSON.stringify(endpoint)}, or run with --endpoint ${s.type[F_URL] === T_STRING ? this.f.text(F_URL) : '<endpoint>'} (one endpoint per job)`,
      );
    }
  }

  private body(): void {
    const { s } = this.f;
    const p = this.problems;
    if (s.type[F_BODY] === T_NONE) {
      p.add('missing_body', 'body is missing: put the request (model, messages, ...) in a "body" object');
      return;
    }
    if (s.type[F_BODY] !== T_OBJECT) {
      p.add(
        'invalid_body',
        `body must be a JSON object, got ${this.f.typeName(F_BODY)}: write "body":{"model":...}`,
      );
      return;
    }
    if (s.type[F_MODEL] === T_NONE) {
      p.add('missing_model', 'body.model is missing: add "model" (e.g. "qwen-plus") inside body');
    } else if (s.type[F_MODEL] !== T_STRING) {
      p.add(
        'invalid_model',
        `body.model must be a string, got ${this.f.typeName(F_MODEL)}: write e.g. "model":"qwen-plus"`,
      );
    } else if (s.end[F_MODEL] === s.start[F_MODEL]) {
      p.add('missing_model', 'body.model is empty: name the model, e.g. "model":"qwen-plus"');
    }
    if (s.type[F_STREAM] === T_TRUE) {
      p.add(
        'streaming_unsupported',
        'body.stream is true: batch requests cannot stream; remove "stream" or set it to false',
      );
    }
    const think = s.type[F_THINK]!;
    if (think !== T_NONE && think !== T_TRUE && think !== T_FALSE) {
      p.add(
        'invalid_enable_thinking',
        `body.enable_thinking must be true or false, got ${think === T_STRING ? quote(this.f.text(F_THINK)) : this.f.typeName(F_THINK)}`,
      );
    }
    if (s.type[F_EXTRA_THINK] !== T_NONE) {
      p.add(
        'thinking_in_extra_body',
        'body.extra_body.enable_thinking has no effect in a batch file (extra_body is an SDK mechanism): move enable_thinking to the top level of body, beside "model"',
      );
    }
  }
}
