// The result line both providers write, in the output and the error file alike (batch-api.md):
// {"id","custom_id","response":{"status_code","request_id","body"}|null,"error":{"code","message"}|null}
import type { LineOutcome } from './line-outcome.ts';
import { hexId } from './random.ts';

function uuidFrom(text: string): string {
  const h = hexId(text, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `{code, message}`, or DashScope's `{error_code, error_message}` under the error-code-fields quirk. */
function errorObject(code: string, message: string, codeFields: boolean): Record<string, string> {
  return codeFields ? { error_code: code, error_message: message } : { code, message };
}

/** One result line with its newline. */
export function resultLine(
  batchId: string,
  customId: string,
  outcome: LineOutcome,
  codeFields: boolean,
): string {
  const id = `batch_req_${hexId(`${batchId}\u0000${customId}`)}`;
  const requestId = uuidFrom(`${batchId}\u0000${customId}\u0000request`);
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
