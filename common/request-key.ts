// The key under which an answer is stored and found again: a hash of the request as the provider
// sees it (method, url, body) in canonical form, so that key order and whitespace do not matter,
// and of where it is sent (the provider scope), so that an answer of one provider is never handed
// out as another's. The custom_id is not part of it: the same question under a new id is the same
// question.
import { createHash, type Hash } from 'node:crypto';

/** JSON with object keys sorted at every depth and no whitespace; numbers as JSON.stringify writes them. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (i > 0) out += ',';
    out += `${JSON.stringify(k)}:${canonicalJson(obj[k])}`;
  }
  return `${out}}`;
}

/** A parsed request line, as far as the key needs it. */
export interface RequestParts {
  method?: unknown;
  url?: unknown;
  body?: unknown;
}

/**
 * The provider scope of a key: the profile and, except for the local emulator (whose answers are
 * deterministic and whose port changes from run to run), the base URL.
 */
export function providerScope(profile: string, baseUrl: string | undefined): string {
  return profile === 'emulator' ? 'emulator' : `${profile} ${baseUrl ?? ''}`;
}

/** Bytes of a request key: 128 bits of SHA-256. */
export const KEY_BYTES = 16;

/**
 * Request keys within one scope. The scope's prefix is hashed once and copied per request, so the
 * scan threads, which key every line of a plan, pay only for the request's own bytes.
 */
export class RequestKeyer {
  private readonly prefix: Hash;

  constructor(scope: string) {
    this.prefix = createHash('sha256').update(`batchpilot-answer-v1\n${scope}\n`);
  }

  /** The request's key as KEY_BYTES bytes. */
  keyOf(req: RequestParts): Buffer {
    const canonical = canonicalJson({ method: req.method, url: req.url, body: req.body });
    return this.prefix.copy().update(canonical).digest().subarray(0, KEY_BYTES);
  }

  /** The key of the request line u8[start, start+len) (UTF-8 JSON), as KEY_BYTES bytes. */
  keyOfBytes(u8: Uint8Array, start: number, len: number): Buffer {
    const text = Buffer.from(u8.buffer, u8.byteOffset + start, len).toString('utf8');
    return this.keyOf(JSON.parse(text) as RequestParts);
  }
}

/** 32 hex digits (128 bits of SHA-256): the request's key within `scope`. */
export function requestKey(scope: string, req: RequestParts): string {
  return new RequestKeyer(scope).keyOf(req).toString('hex');
}

/** The key of one request line's bytes (UTF-8 JSON). */
export function requestKeyOfLine(scope: string, line: string): string {
  return requestKey(scope, JSON.parse(line) as RequestParts);
}
