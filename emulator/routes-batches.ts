// Batches API (docs/providers.md, Batches): create (bad endpoint, window or metadata is 400 at once and
// creates nothing), retrieve, cancel, and list newest first with DashScope's filters.
import { randomUUID } from 'node:crypto';
import type { Handler, RequestContext } from './context.ts';
import { HttpError, isRecord, readJson } from './http.ts';
import type { ProfileRules } from './limits.ts';
import {
  BATCH_STATUSES,
  TERMINAL_STATUSES,
  nowSeconds,
  type BatchObject,
  type BatchStatus,
} from './objects.ts';
import { pageOf } from './paging.ts';
import type { StoredBatch } from './store.ts';

const bad = (message: string, param: string, code = 'invalid_value'): HttpError =>
  new HttpError(400, message, { code, param });

/** Hours of a completion window, or an error naming what the profile accepts. */
export function windowHours(window: unknown, rules: ProfileRules): number {
  const { min, max } = rules.windowHours;
  const accepted = rules.windowDays
    ? `from ${min}h to ${max}h, in hours (e.g. 24h) or days (e.g. 7d)`
    : `only ${min}h`;
  const m = typeof window === 'string' ? /^(\d+)([hd])$/.exec(window) : null;
  const hours = m ? Number(m[1]) * (m[2] === 'd' ? 24 : 1) : NaN;
  if (!m || (m[2] === 'd' && !rules.windowDays) || !(hours >= min && hours <= max)) {
    throw bad(
      `completion_window ${JSON.stringify(window)} is not accepted: ${accepted}`,
      'completion_window',
    );
  }
  return hours;
}

const METADATA_LIMITS: Record<string, number> = { ds_name: 100, ds_description: 200 };

/** Metadata as OpenAI bounds it (16 keys, keys ≤64, values ≤512) plus DashScope's ds_* lengths. */
export function checkMetadata(metadata: unknown): Record<string, string> | null {
  if (metadata === undefined || metadata === null) return null;
  if (!isRecord(metadata)) throw bad('metadata must be an object of string values', 'metadata');
  const entries = Object.entries(metadata);
  if (entries.length > 16) throw bad('metadata has more than 16 keys', 'metadata');
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw bad(`metadata.${key} must be a string`, 'metadata');
    if (key.length > 64) throw bad(`metadata key ${key} is longer than 64 characters`, 'metadata');
    const max = METADATA_LIMITS[key] ?? 512;
    if (value.length > max) throw bad(`metadata.${key} is longer than ${max} characters`, 'metadata');
  }
  return metadata as Record<string, string>;
}

function batchOr404(ctx: RequestContext): StoredBatch {
  const id = ctx.params[0]!;
  const b = ctx.state.store.batches.get(id);
  if (!b) throw new HttpError(404, `No such Batch object: ${id}`, { code: 'not_found', param: 'batch_id' });
  return b;
}

export const createBatch: Handler = async ({ req, state }) => {
  const body = await readJson(req);
  if (!isRecord(body)) throw bad('the request body must be a JSON object', 'body', 'invalid_request');
  const { input_file_id: inputId, endpoint, completion_window: window } = body;
  if (typeof inputId !== 'string' || inputId === '') {
    throw bad('input_file_id is required', 'input_file_id', 'missing_required_parameter');
  }
  if (typeof endpoint !== 'string' || !state.rules.endpoints.includes(endpoint)) {
    throw bad(`endpoint must be one of ${state.rules.endpoints.join(', ')}`, 'endpoint');
  }
  const hours = windowHours(window, state.rules);
  const metadata = checkMetadata(body.metadata);
  const input = state.store.liveFile(inputId);
  if (!input)
    throw new HttpError(404, `No such File object: ${inputId}`, {
      code: 'not_found',
      param: 'input_file_id',
    });
  if (input.file.purpose !== 'batch') {
    throw bad(
      `file ${inputId} has purpose ${input.file.purpose}, not batch`,
      'input_file_id',
      'invalid_request',
    );
  }
  const sameContent = [...state.store.batches.values()].filter(
    (b) => b.run.inputSha256 === input.sha256,
  ).length;
  const now = nowSeconds();
  const batch: BatchObject = {
    id: `batch_${randomUUID()}`,
    object: 'batch',
    endpoint,
    errors: null,
    input_file_id: inputId,
    completion_window: String(window),
    status: 'validating',
    output_file_id: null,
    error_file_id: null,
    created_at: now,
    in_progress_at: null,
    expires_at: now + hours * 3600,
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total: 0, completed: 0, failed: 0 },
    metadata,
  };
  state.store.addBatch(batch, {
    inputSha256: input.sha256,
    contentAttempt: sameContent,
    inputOffset: 0,
    processedLines: 0,
    outputBytes: 0,
    errorBytes: 0,
    succeeded: 0,
    failedLines: 0,
    failedInOutput: 0,
    expiring: false,
  });
  state.processor.start(batch.id);
  return { status: 200, body: batch };
};

export const retrieveBatch: Handler = (ctx) => ({ status: 200, body: batchOr404(ctx).batch });

export const cancelBatch: Handler = (ctx) => {
  const sb = batchOr404(ctx);
  const { status } = sb.batch;
  if (status === 'cancelled' || status === 'cancelling') return { status: 200, body: sb.batch };
  if (TERMINAL_STATUSES.includes(status)) {
    throw new HttpError(409, `Cannot cancel a batch with status ${status}.`, { code: 'invalid_state' });
  }
  sb.batch.status = 'cancelling';
  sb.batch.cancelling_at = nowSeconds();
  ctx.state.store.saveBatch(sb);
  ctx.state.processor.start(sb.batch.id);
  return { status: 200, body: sb.batch };
};

/** `yyyyMMddHHmmss` (read as UTC) into unix seconds. */
function parseStamp(text: string, param: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  const t = m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
  if (!m || Number.isNaN(t)) throw bad(`${param} must be yyyyMMddHHmmss`, param);
  return t / 1000;
}

function commaList(text: string | null): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const THIRTY_DAYS = 30 * 86_400;

/** DashScope's list filters as one predicate; every filter is optional. */
function dashscopeFilter(url: URL): (b: StoredBatch) => boolean {
  const q = url.searchParams;
  const name = q.get('ds_name')?.toLowerCase();
  const inputIds = commaList(q.get('input_file_ids'));
  if (inputIds.length > 20) throw bad('input_file_ids takes at most 20 ids', 'input_file_ids');
  const statuses = commaList(q.get('status'));
  for (const s of statuses) {
    if (!BATCH_STATUSES.includes(s as BatchStatus)) throw bad(`unknown status ${s}`, 'status');
  }
  const after = q.get('create_after') ? parseStamp(q.get('create_after')!, 'create_after') : -Infinity;
  const before = q.get('create_before') ? parseStamp(q.get('create_before')!, 'create_before') : Infinity;
  const oldest = nowSeconds() - THIRTY_DAYS;
  return ({ batch }) =>
    batch.created_at >= oldest &&
    (!name || (batch.metadata?.ds_name ?? '').toLowerCase().includes(name)) &&
    (inputIds.length === 0 || inputIds.includes(batch.input_file_id)) &&
    (statuses.length === 0 || statuses.includes(batch.status)) &&
    batch.created_at >= after &&
    batch.created_at <= before;
}

export const listBatches: Handler = ({ url, state }) => {
  // OpenAI ignores query parameters it does not know, so the openai profile ignores the filters.
  const keep = state.rules.listFilters ? dashscopeFilter(url) : () => true;
  const all = [...state.store.batches.values()].filter(keep).sort((a, b) => b.seq - a.seq);
  const page = pageOf(all, url, (b) => b.batch, {
    defaultLimit: 20,
    maxLimit: 100,
    seqOf: (id) => state.store.batches.get(id)?.seq,
    descending: true,
  });
  return { status: 200, body: page };
};
