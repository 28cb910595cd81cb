// What happens to one request line: a seeded fault (by custom_id and attempt only, so timing and
// restarts never change it) or the deterministic answer.
import { answer } from './answers.ts';
import { completionHex } from './envelope.ts';
import type { ResolvedFaults } from './faults.ts';
import { draw, pick } from './random.ts';

export type LineOutcome =
  | { kind: 'success'; body: Record<string, unknown> }
  /** An HTTP failure of the request: `response.status_code` 4xx/5xx with `response.body.error`. */
  | { kind: 'http-error'; status: number; code: string; message: string }
  /** A failure without an HTTP answer: `response: null`, `error.code`. */
  | { kind: 'error'; code: string; message: string };

const RETRYABLE: LineOutcome[] = [
  { kind: 'http-error', status: 429, code: 'Throttling', message: 'Requests rate limit exceeded.' },
  { kind: 'http-error', status: 500, code: 'InternalError', message: 'An internal error has occurred.' },
  { kind: 'http-error', status: 503, code: 'ServiceUnavailable', message: 'The service is unavailable.' },
  { kind: 'error', code: 'request_timeout', message: 'The request timed out.' },
];

const PERMANENT: LineOutcome[] = [
  {
    kind: 'http-error',
    status: 400,
    code: 'InvalidParameter',
    message: 'Range of input length should be [1, 30720].',
  },
  {
    kind: 'http-error',
    status: 400,
    code: 'DataInspectionFailed',
    message: 'Input data may contain inappropriate content.',
  },
];

/** `attempt` is how many earlier batches processed this custom_id; `digest` names this run of it. */
export function decideLine(
  faults: ResolvedFaults,
  endpoint: string,
  customId: string,
  attempt: number,
  body: Record<string, unknown>,
  digest: string,
): LineOutcome {
  // Draws are pure functions of (seed, key): skipping them when no line can fail changes nothing
  // but the cost (two sha256 a line).
  if (faults.linePermanentRate + faults.lineRetryableRate > 0) {
    const u = draw(faults.seed, 'line', customId, attempt);
    if (u < faults.linePermanentRate + faults.lineRetryableRate) {
      const kind = draw(faults.seed, 'line-kind', customId, attempt);
      return pick(u < faults.linePermanentRate ? PERMANENT : RETRYABLE, kind);
    }
  }
  const a = answer(endpoint, body, completionHex(digest));
  return a.ok
    ? { kind: 'success', body: a.body }
    : { kind: 'http-error', status: a.status, code: a.code, message: a.message };
}
