// Classifies one provider result line by its own status code and error, never by the file it came
// in or the batch's counts: DashScope can put failed lines in the output file (docs/providers.md, Result lines).
// Whether a failed line can be sent again is the provider error map's call (provider-errors.ts), the
// same one that judges the calls batchpilot makes itself.
import { errorKind } from './provider-errors.ts';

export type LineClass = 'ok' | 'retry' | 'permanent';

export interface LineError {
  code: string;
  message: string;
  status_code: number | null;
}

export interface Classified {
  kind: LineClass;
  error: LineError | null;
  usage: [number, number, number] | null;
}

interface ResultLine {
  custom_id?: unknown;
  response?: { status_code?: unknown; body?: unknown } | null;
  error?: Record<string, unknown> | null;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Reads `{code, message}` or DashScope's `{error_code, error_message}`. */
export function readError(e: unknown): { code?: string; message?: string } {
  if (!e || typeof e !== 'object') return {};
  const o = e as Record<string, unknown>;
  return {
    code: str(o.code) ?? str(o.error_code) ?? str(o.type),
    message: str(o.message) ?? str(o.error_message),
  };
}

function readUsage(body: unknown): [number, number, number] | null {
  const u = (body as { usage?: Record<string, unknown> } | undefined)?.usage;
  if (!u || typeof u !== 'object') return null;
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const prompt = n(u.prompt_tokens ?? u.input_tokens);
  const completion = n(u.completion_tokens ?? u.output_tokens);
  return [prompt, completion, n(u.total_tokens) || prompt + completion];
}

/**
 * @param cancelledByUs a `batch_cancelled` line is retryable unless the cancel was the user's own.
 */
export function classifyResult(line: ResultLine, cancelledByUs = false): Classified {
  const response = line.response ?? null;
  const status = typeof response?.status_code === 'number' ? response.status_code : null;
  const topError = readError(line.error);
  const bodyError = readError((response?.body as { error?: unknown } | undefined)?.error);
  if (status !== null && status >= 200 && status < 300 && !topError.code) {
    return { kind: 'ok', error: null, usage: readUsage(response?.body) };
  }
  const code = topError.code ?? bodyError.code ?? (status !== null ? `http_${status}` : 'unknown_error');
  const message = topError.message ?? bodyError.message ?? 'the provider gave no message';
  const error: LineError = { code, message, status_code: status };
  // A cancel the user asked for is final for this run, whatever the map says of batch_cancelled.
  const kind = code === 'batch_cancelled' && cancelledByUs ? 'permanent' : errorKind(status, code);
  return { kind, error, usage: null };
}

/**
 * A line stopped by the user's own cancel: final for that run of the job, sent again when the job
 * is resumed (whatever its attempts, since the provider never answered it).
 */
export function isCancelledByUser(kind: LineClass, code: string | undefined): boolean {
  return kind === 'permanent' && code === 'batch_cancelled';
}

/** A line the provider never answered (in neither file): resubmit it. */
export function missingLine(batchStatus: string, cancelledByUs: boolean): Classified {
  if (cancelledByUs) {
    return {
      kind: 'permanent',
      error: {
        code: 'batch_cancelled',
        message: 'cancelled by the user before this line ran',
        status_code: null,
      },
      usage: null,
    };
  }
  const code = batchStatus === 'expired' ? 'batch_expired' : 'not_processed';
  return {
    kind: 'retry',
    error: { code, message: `the ${batchStatus} batch returned no result for this line`, status_code: null },
    usage: null,
  };
}
