// Provider calls for one unit: upload its file, create exactly one batch, read it, cancel it.
// Exactly-once: every create is preceded by a lookup for a batch carrying the unit's key, and runs
// with maxRetries 0, so a worker killed between the provider's answer and the activity's completion
// finds the batch on retry instead of paying for a second one (docs/providers.md, Traps in the openai Node SDK).
// A provider without list routes (docs/provider-capabilities.md) cannot be asked: there a create is
// re-sent only when it surely never reached the provider, and an unknown outcome stops the shard.
import fsp from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import { BATCH_KEY_METADATA, JOB_ID_METADATA } from '../common/definitions.ts';
import { type BatchView, type ProviderFailureDetails, type ProviderLookup } from '../common/job-types.ts';
import { unitFileName } from '../common/keys.ts';
import { lookupMeaning } from '../common/provider-lookups.ts';
import type { ActivityDeps } from './deps.ts';
import { logFor } from './log.ts';
import { describeError, publicUrl, statusOf, surelyNotDone } from './provider-errors.ts';
import { failureOf, providerCaller } from './provider-calls.ts';
import { withHeartbeat } from './heartbeat.ts';
import { ensureRoom } from './in-flight-cap.ts';
import { Semaphore } from './semaphore.ts';
import { Spacer } from './spacer.ts';
import { count } from './metrics.ts';
import { uploadBatchFile } from './upload.ts';
import { findBatch, findUploaded, listMissing, signal } from './batch-lookups.ts';
import { toView } from './batch-view.ts';
import { storesOf } from './stores.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import { workKey } from '../storage/layout.ts';
import { withWorkspace, type Workspace } from '../storage/workspace.ts';

export interface UploadInput {
  key: string;
  workDir: string;
  round: number;
  index: number;
  /** Epoch seconds before which no file of this job can exist: bounds the lookup scan. */
  notBefore: number;
  /** No earlier run or call can have sent this key (see firstSend). */
  fresh?: boolean;
}

export interface UploadedFile {
  fileId: string;
  createdAt: number;
  /** Lookups the provider could not answer (its list routes are missing). */
  unavailableLookups?: ProviderLookup[];
}

export interface CreateBatchInput {
  key: string;
  jobId: string;
  fileId: string;
  fileCreatedAt: number;
  endpoint: string;
  completionWindow: string;
  metadata: Record<string, string>;
  /** Re-send a create of unknown outcome where batches cannot be listed (--allow-duplicate-batches). */
  allowDuplicateBatches?: boolean;
  /** The job's work folder: where a create in flight is noted when batches cannot be listed. */
  workDir?: string;
  /** No earlier run or call can have sent this key (see firstSend). */
  fresh?: boolean;
  /** Batches of this key the provider refused for its enqueued-token limit: not the one to find. */
  skipBatchIds?: string[];
}

/**
 * Whether this call is surely the first to send its key, so the lookup before it can be skipped: the
 * workflow says no earlier run of the job or earlier call of the shard used the key (`fresh`), and
 * this is the activity's first attempt (a retry may follow an attempt whose answer was lost).
 */
function firstSend(fresh: boolean | undefined): boolean {
  if (fresh !== true) return false;
  try {
    return Context.current().info.attempt === 1;
  } catch {
    return false;
  }
}

const UPLOADS_AT_ONCE = 4;

/** The non-retryable failure of a create whose outcome is unknown on a provider that cannot be asked. */
function outcomeUnknown(
  input: CreateBatchInput,
  reason: string,
  baseUrl: string,
  status?: number,
): ApplicationFailure {
  const url = publicUrl(baseUrl);
  const message =
    `create batch for ${input.key}: the outcome is unknown (${reason}) and the provider at ${url} cannot list ` +
    `batches to check, so it was not sent again. Check the provider's batches for input_file_id ` +
    `${input.fileId}: if none exists, run the job again with --allow-duplicate-batches (it re-sends ` +
    `such creates, at the risk of paying for a second batch)`;
  const details: ProviderFailureDetails = {
    code: 'batch_outcome_unknown',
    message,
    call: 'create batch',
    ...(status !== undefined ? { status_code: status } : {}),
    ...(url ? { baseUrl: url } : {}),
  };
  return ApplicationFailure.create({
    message,
    type: 'BatchOutcomeUnknown',
    nonRetryable: true,
    details: [details],
  });
}

/**
 * The activities that upload unit files and create, read, find and cancel batches, built on the worker's dependencies. Long as a whole, not as a unit: each
 * inner function is one activity or one named step of one, and they share the dependencies and the
 * provider caller this closure holds.
 */
export function batchActivities(deps: ActivityDeps) {
  const call = providerCaller(deps);
  // List routes found missing on this worker's provider: asked once, then not again.
  const missing = new Set<ProviderLookup>();
  // List routes that answered on this worker's provider, and the first lookups still in flight.
  const answered = new Set<ProviderLookup>();
  const probing = new Map<ProviderLookup, Promise<unknown>>();
  /**
   * Runs a lookup unless its route is known missing; undefined when it cannot be made or is not
   * needed. A call that cannot have been made before (`skippable`, see firstSend) needs none once
   * the route is known to answer; until then the lookup is made all the same, because whether the
   * provider can be asked decides how a lost answer is handled. So a worker lists at most once per
   * route on a clean run, however many shards it sends.
   */
  async function lookup<T>(
    route: ProviderLookup,
    what: string,
    fn: () => Promise<T>,
    skippable: boolean,
  ): Promise<T | undefined> {
    // Shards starting together wait for the first lookup rather than all making one.
    const probe = skippable && !answered.has(route) ? probing.get(route) : undefined;
    if (probe) await probe.catch(() => undefined);
    if (missing.has(route)) return undefined;
    if (skippable && answered.has(route)) return undefined;
    const attempt = fn();
    if (!answered.has(route) && !probing.has(route)) {
      probing.set(route, attempt);
      void attempt.finally(() => probing.delete(route)).catch(() => undefined);
    }
    try {
      const found = await attempt;
      answered.add(route);
      return found;
    } catch (err) {
      if (!listMissing(err)) throw failureOf(deps, err, what);
      missing.add(route);
      logFor(deps).warn(
        { route, status: statusOf(err), url: publicUrl(deps.openai.baseURL) },
        `the provider has no ${route} (answered ${statusOf(err)}): ${lookupMeaning(route)}`,
      );
      return undefined;
    }
  }
  const capLock = new Semaphore(1);
  // An upload holds read buffers and socket buffers while it is sent, and several at once only
  // share the same link: a worker sends a few at a time rather than one per activity slot.
  const uploads = new Semaphore(UPLOADS_AT_ONCE);
  const uploadTurns = new Spacer(deps.uploadsPerSecond);
  async function createOnce(input: CreateBatchInput): Promise<BatchView> {
    const found = await lookup(
      'GET /batches',
      'look up batches',
      () => findBatch(deps, input.key, input.fileId, input.fileCreatedAt, input.skipBatchIds),
      firstSend(input.fresh),
    );
    if (found) {
      logFor(deps).info({ key: input.key, batchId: found.id }, 'found batch made by an earlier attempt');
      return toView(found);
    }
    // Known only after the lookup: the work folder's sending marker is needed when batches cannot
    // be listed, and then on an attempt's first create too.
    const blind = missing.has('GET /batches');
    const ws = blind && input.workDir ? await storesOf(deps).workspace(input.workDir) : undefined;
    try {
      return await sendCreate(input, blind, ws);
    } finally {
      await ws?.release();
    }
  }

  async function sendCreate(
    input: CreateBatchInput,
    blind: boolean,
    ws: Workspace | undefined,
  ): Promise<BatchView> {
    const metadata = {
      ...input.metadata,
      [BATCH_KEY_METADATA]: input.key,
      [JOB_ID_METADATA]: input.jobId.slice(0, 512),
    };
    const url = deps.openai.baseURL;
    const marker = blind && ws ? workKey.sending(input.key) : undefined;
    if (marker && ws && (await ws.has(marker)) && !input.allowDuplicateBatches) {
      throw outcomeUnknown(input, 'an earlier attempt stopped while sending it', url);
    }
    const create = async () => {
      if (deps.maxInFlight !== undefined) {
        await call('count batches in flight', () => ensureRoom(deps.openai, deps.profile, deps.maxInFlight!));
      }
      // Durable: after a crash it is what says a batch may exist that the provider cannot list.
      if (marker && ws) {
        await writeFileAtomic(ws.local(marker), `${new Date().toISOString()} ${input.fileId}\n`, 'durable');
        await ws.push(marker);
      }
      try {
        return await deps.openai.batches.create(
          {
            input_file_id: input.fileId,
            endpoint: input.endpoint as OpenAI.Batches.BatchCreateParams['endpoint'],
            completion_window: input.completionWindow as '24h',
            metadata,
          },
          { maxRetries: 0, signal: signal() },
        );
      } catch (err) {
        const notDone = surelyNotDone(err);
        if (marker && ws && notDone) await ws.remove(marker);
        if (blind && !notDone) {
          if (!input.allowDuplicateBatches)
            throw outcomeUnknown(input, describeError(err), url, statusOf(err));
          logFor(deps).warn(
            { key: input.key, fileId: input.fileId },
            'create batch: outcome unknown and batches cannot be listed; sending again as --allow-duplicate-batches asks (a second batch may be billed)',
          );
        }
        throw failureOf(deps, err, 'create batch');
      }
    };
    // The cap's check-then-create runs one at a time in this worker so the cap holds exactly.
    const b = deps.maxInFlight !== undefined ? await capLock.run(create) : await create();
    if (marker && ws) await ws.remove(marker);
    logFor(deps).info({ key: input.key, batchId: b.id }, 'created batch');
    count('batchesCreated');
    count('linesSubmitted', b.request_counts?.total ?? 0);
    return { ...toView(b), ...(blind ? { unavailableLookups: ['GET /batches' as const] } : {}) };
  }

  return {
    /** Uploads a unit's file, or returns the one an earlier attempt uploaded. */
    async uploadUnit(input: UploadInput): Promise<UploadedFile> {
      // On object storage the unit is copied to scratch first: one unit's file, dropped at the end.
      // The heartbeat covers that copy too: a slow store can take longer than the heartbeat
      // timeout for tens of MB, and an attempt timed out there would be retried the same way.
      return withHeartbeat(() =>
        withWorkspace(storesOf(deps), input.workDir, async (ws) => {
          const name = unitFileName(input.key);
          const path = await ws.pull(workKey.unit(input.round, input.index));
          const { size } = await fsp.stat(path);
          const existing = await lookup(
            'GET /files',
            'look up uploaded files',
            () => findUploaded(deps.openai, name, size, input.notBefore),
            firstSend(input.fresh),
          );
          if (existing) {
            logFor(deps).info({ key: input.key, fileId: existing.fileId }, 'reusing uploaded file');
            return existing;
          }
          // Without a files list a retried upload is simply sent again: the worst case is an orphan
          // copy in the provider's storage, which costs no tokens.
          const f = await uploads.run(async () => {
            await uploadTurns.turn(signal());
            return call('upload shard', () => uploadBatchFile(deps.openai, path, size, name, signal()));
          });
          logFor(deps).info({ key: input.key, fileId: f.id, bytes: size }, 'uploaded shard');
          return {
            fileId: f.id,
            createdAt: f.created_at,
            ...(missing.has('GET /files') ? { unavailableLookups: ['GET /files' as const] } : {}),
          };
        }),
      );
    },

    /** Creates the unit's batch exactly once (lookup first, no SDK retries). */
    async createBatch(input: CreateBatchInput): Promise<BatchView> {
      return createOnce(input);
    },

    /** Reads a batch's status (one poll). */
    async getBatch(batchId: string): Promise<BatchView> {
      count('polls');
      return toView(
        await call('read batch', () => deps.openai.batches.retrieve(batchId, { signal: signal() })),
      );
    },

    /** Finds the batch of a key, for a cancel that raced with create. */
    async findUnitBatch(input: {
      key: string;
      fileId: string;
      notBefore: number;
      skipBatchIds?: string[];
    }): Promise<BatchView | null> {
      const b = await lookup(
        'GET /batches',
        'look up batches',
        () => findBatch(deps, input.key, input.fileId, input.notBefore, input.skipBatchIds),
        false,
      );
      return b ? toView(b) : null;
    },

    /** Asks the provider to cancel; a batch that already ended (409) is fine. */
    async cancelBatch(batchId: string): Promise<BatchView> {
      try {
        return toView(await deps.openai.batches.cancel(batchId));
      } catch (err) {
        if (statusOf(err) === 409) {
          return toView(await call('read batch', () => deps.openai.batches.retrieve(batchId)));
        }
        throw failureOf(deps, err, 'cancel batch');
      }
    },

    /**
     * Deletes the job's provider files; a missing file is fine, and a file that cannot be deleted is
     * logged and left (it costs storage, never a job). Only throttling fails it, to be retried when
     * Retry-After says (the files already deleted then answer 404): a 429 says nothing is wrong.
     */
    async deleteRemoteFiles(fileIds: string[]): Promise<number> {
      let deleted = 0;
      for (const id of fileIds) {
        try {
          await deps.openai.files.delete(id);
          deleted++;
        } catch (err) {
          if (statusOf(err) === 404) continue;
          if (statusOf(err) === 429) throw failureOf(deps, err, `delete file ${id}`);
          count('remoteDeleteFailures');
          const f = failureOf(deps, err, `delete file ${id}`);
          logFor(deps).warn(
            { fileId: id },
            `could not delete ${id} at the provider (left there): ${f.message}`,
          );
        }
      }
      return deleted;
    },
  };
}
