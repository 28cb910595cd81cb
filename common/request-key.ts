// The key under which an answer is stored and found again: a hash of the request as the provider
// sees it (method, url, body) in canonical form, so that key order and whitespace do not matter,
// and of where it is sent (the provider scope), so that an answer of one provider is never handed
// out as another's. The custom_id is not part of it: the same question under a new id is the same
// question.
import { createHash } from 'node:crypto';

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

/** 32 hex digits (128 bits of SHA-256): the request's key within `scope`. */
export function requestKey(scope: string, req: RequestParts): string {
  const canonical = canonicalJson({ method: req.method, url: req.url, body: req.body });
  return createHash('sha256')
    .update(`batchpilot-answer-v1\n${scope}\n`)
    .update(canonical)
    .digest('hex')
    .slice(0, 32);
}

/** The key of one request line's bytes (UTF-8 JSON). */
export function requestKeyOfLine(scope: string, line: string): string {
  return requestKey(scope, JSON.parse(line) as RequestParts);
}
