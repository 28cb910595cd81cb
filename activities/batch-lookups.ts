// Lookups before a create or an upload, and the listing helpers the batch watcher shares: what an
// earlier attempt may already have made, found by the unit's key or file. Bounded by the job's
// start (less a clock skew) where the provider lists newest first.
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import { BATCH_KEY_METADATA } from '../common/definitions.ts';
import type { ActivityDeps } from './deps.ts';
import { statusOf } from './provider-errors.ts';

/** Clock skew allowed between us and the provider when bounding a newest-first scan. */
export const SKEW_SECONDS = 300;

/** A file an earlier attempt uploaded. */
export interface FoundFile {
  fileId: string;
  createdAt: number;
}

/** The running activity's cancellation, so a cancelled activity stops paging (none outside one). */
export function signal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/** Finds a file this unit already uploaded (same name and size), newest first. */
export async function findUploaded(
  openai: OpenAI,
  name: string,
  bytes: number,
  notBefore: number,
): Promise<FoundFile | undefined> {
  for await (const f of openai.files.list({ limit: 100 }, { signal: signal() })) {
    if (f.created_at < notBefore - SKEW_SECONDS) return undefined;
    if (f.filename === name && f.bytes === bytes && f.purpose === 'batch')
      return { fileId: f.id, createdAt: f.created_at };
  }
  return undefined;
}

/** Finds the batch made for this key: by DashScope's input_file_ids filter, or by scanning newest first. */
export async function findBatch(
  deps: ActivityDeps,
  key: string,
  fileId: string,
  notBefore: number,
  skip: readonly string[] = [],
): Promise<OpenAI.Batches.Batch | undefined> {
  const matches = (b: OpenAI.Batches.Batch) =>
    (b.metadata?.[BATCH_KEY_METADATA] === key || b.input_file_id === fileId) && !skip.includes(b.id);
  if (deps.profile.listFilters) {
    // DashScope filters go in the query itself (docs/providers.md, Traps in the openai Node SDK).
    const query = { input_file_ids: fileId, limit: 100 } as OpenAI.Batches.BatchListParams;
    for await (const b of deps.openai.batches.list(query, { signal: signal() })) if (matches(b)) return b;
    return undefined;
  }
  for await (const b of deps.openai.batches.list({ limit: 100 }, { signal: signal() })) {
    if (b.created_at < notBefore - SKEW_SECONDS) return undefined;
    if (matches(b)) return b;
  }
  return undefined;
}

/** A list route the server does not have: 404 or 405 (some gateways answer 501). */
export function listMissing(err: unknown): boolean {
  const s = statusOf(err);
  return s === 404 || s === 405 || s === 501;
}
