// The result line both providers write, in the output and the error file alike (docs/providers.md, Result lines):
// {"id","custom_id","response":{"status_code","request_id","body"}|null,"error":{"code","message"}|null}
import type { LineOutcome } from './line-outcome.ts';
import { hash } from 'node:crypto';

/**
 * 128 hex digits naming one run of a request line (batch, custom_id): the result line's id, its
 * request_id, the completion's id and its place in the result file are slices of it, so a line
 * costs one hash, not four.
 */
export function requestDigest(batchId: string, customId: string): string {
  return hash('sha512', `${batchId}\u0000${customId}`, 'hex');
}

/** The hex that names the completion a line's answer carries (see requestDigest). */
export const completionHex = (digest: string): string => digest.slice(56, 80);

/** A pseudo-random sort key that shuffles a line within the result file (see requestDigest). */
export const orderKey = (digest: string): number => parseInt(digest.slice(80, 88), 16);

function uuidFrom(h: string): string {
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** `{code, message}`, or DashScope's `{error_code, error_message}` under the error-code-fields quirk. */
function errorObject(code: string, message: string, codeFields: boolean): Record<string, string> {
  return codeFields ? { error_code: code, error_message: message } : { code, message };
}

/** One result line with its newline. */
export function resultLine(
  digest: string,
  customId: string,
  outcome: LineOutcome,
  codeFields: boolean,
): string {
  const id = `batch_req_${digest.slice(0, 24)}`;
  const requestId = uuidFrom(digest.slice(24, 56));
  let response: unknown = null;
  let error: unknown = null;
  if (outcome.kind === 'success') {
    response = { status_code: 200, request_id: requestId, body: outcome.body };
  } else if (outcome.kind === 'http-error') {
    const type = outcome.status >= 500 ? 'server_error' : 'invalid_request_error';
    const err = { ...errorObject(outcome.code, outcome.message, codeFields), type, param: null };
    response = { status_code: outcome.status, request_id: requestId, body: { error: err } };
  } else {
    error = errorObject(outcome.code, outcome.message, codeFields);
  }
  return `${JSON.stringify({ id, custom_id: customId, response, error })}\n`;
}

/**
 * The `malformed-output-line` quirk, as a result file damaged on its way: a batch's first processed
 * line is cut off after its custom_id (not JSON, the id still legible), its second before it.
 */
export function damagedResultLine(line: string, processed: number): string {
  const at =
    processed === 0 ? line.indexOf('"response"') : processed === 1 ? line.indexOf('"custom_id"') : -1;
  return at === -1 ? line : `${line.slice(0, at)}\n`;
}
