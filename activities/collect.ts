// Streams a finished batch's output and error files down, classifies every line by its own status
// and error, and files each outcome under the original shard it came from. Lines in neither file
// were never run and are marked for resubmission. Memory: one Map of this unit's custom_ids
// (bounded by --max-lines), never the results themselves.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import type { BatchView, UnattributedError, Unit, UnitCounts, UnitResult } from '../common/job-types.ts';
import type { Usage } from '../common/pricing.ts';
import { toView } from './batch-view.ts';
import { chatResultsFile } from './chat.ts';
import { AnswerCapture } from './answer-capture.ts';
import { classifyResult } from './classify.ts';
import type { ActivityDeps } from './deps.ts';
import { logFor } from './log.ts';
import { malformedLine, readResultFileLine } from './malformed-output.ts';
import { customIdOf, readByteLines, splitByteLines, type ByteLine } from './lines.ts';
import { withHeartbeat } from './heartbeat.ts';
import { count } from './metrics.ts';
import { providerCaller } from './provider-calls.ts';
import { storesOf } from './stores.ts';
import { writeJsonAtomic } from '../storage/atomic-file.ts';
import { collectedMarker, originFile, unitFile, workKey } from '../storage/layout.ts';
import { readCollectedMarker, type CollectedMarker } from '../storage/records.ts';
import { withWorkspace, type Workspace } from '../storage/workspace.ts';
import { resultBytes } from '../storage/outcome-record.ts';
import { NO_RESULT, settleUnanswered, UnitOutcomes } from './unit-outcomes.ts';

/** Error-file lines naming no line of the unit that are kept (the rest are only counted). */
const MAX_UNATTRIBUTED = 20;

/**
 * What collecting a unit found: its counts, error lines that named none of its lines, the lines the
 * job's own cancel stopped (inside `failed`) and the tokens its answered lines used.
 */
export interface CollectedCounts extends UnitCounts {
  unattributed?: UnattributedError[];
  cancelled?: number;
  usage?: Usage;
}

/**
 * What a collected unit reported, kept so a re-run of the job reports the same. `cancelled` counts
 * the lines the user's cancel stopped (inside `failed`): a resumed job sends them again.
 */
export type CollectedUnit = Omit<UnitResult, 'unit'> & { cancelled?: number };

export interface CollectInput {
  workDir: string;
  jobId: string;
  unit: Unit;
  /** The provider batch whose output and error files hold the results (file mode)… */
  batchId?: string;
  /**
   * The batch as the workflow last read it, when it had ended: its file ids are final, so it is not
   * read again (one retrieve fewer per batch). A failed batch is read all the same, for every entry
   * of its `errors.data` (the view keeps only the first few).
   */
  ended?: Pick<BatchView, 'status' | 'outputFileId' | 'errorFileId'>;
  /** …or the unit's local Batch Chat results file, in the same envelope (chat mode). */
  chat?: boolean;
  /** The user cancelled the job: unfinished lines fail as cancelled instead of being retried. */
  cancelledByUs: boolean;
  maxAttempts: number;
}

/** Where each line of a unit came from: (original shard, line index in it). */
async function loadOrigins(workDir: string, unit: Unit): Promise<Uint32Array | null> {
  if (unit.round === 1) return null;
  const buf = await fsp.readFile(originFile(workDir, unit.round, unit.index));
  return new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

async function loadIds(
  workDir: string,
  unit: Unit,
  capture: AnswerCapture | undefined,
): Promise<{ ids: Map<string, number>; list: string[] }> {
  const ids = new Map<string, number>();
  const list: string[] = [];
  for await (const line of readByteLines(unitFile(workDir, unit.round, unit.index))) {
    const cid = customIdOf(line.bytes);
    capture?.noteRequest(line.bytes);
    ids.set(cid, list.length);
    list.push(cid);
  }
  return { ids, list };
}

/** The counts a collected unit's marker holds. */
function countsOf(m: CollectedMarker): CollectedCounts {
  const counts = { succeeded: m.succeeded, failed: m.failed, retry: m.retry };
  return m.unattributed?.length ? { ...counts, unattributed: m.unattributed } : counts;
}

/** An error-file line's reason, if it is an error line at all. */
function unattributedError(parsed: Record<string, unknown>): UnattributedError | undefined {
  const c = classifyResult(parsed);
  if (c.kind === 'ok' || !c.error) return undefined;
  const cid = parsed.custom_id;
  return { custom_id: typeof cid === 'string' ? cid : null, ...c.error };
}

/**
 * The activities of collection (collectUnit, collectedUnit), built on the worker's dependencies. Long as a whole, not as a unit: each
 * inner function is one activity or one named step of one, and they share the dependencies and the
 * provider caller this closure holds.
 */
export function collectActivities(deps: ActivityDeps) {
  const call = providerCaller(deps);
  return {
    /** Downloads and classifies one unit's results into outcome files; returns its counts. */
    async collectUnit(input: CollectInput): Promise<CollectedCounts> {
      return withHeartbeat(() =>
        withWorkspace(storesOf(deps), input.workDir, async (ws) => {
          if (!ws.remote) return collect(input);
          // On object storage a committed marker is final: a retry after the commit (the worker
          // died before reporting) returns what was committed and writes nothing.
          const key = workKey.collectedMarker(input.unit.round, input.unit.index);
          if (await ws.has(key)) return countsOf(await readCollectedMarker(await ws.pull(key)));
          await pullUnitFiles(ws, input);
          // Whether the plan said to store this job's answers (absent: planned without reuse).
          if (deps.answers && (await ws.has(workKey.answers()))) await ws.pull(workKey.answers());
          return collect({ ...input, workDir: ws.dir }, ws);
        }),
      );
    },

    /** A unit an earlier run of this job already collected (a re-run after a failed merge). */
    async collectedUnit(input: { workDir: string; unit: Unit }): Promise<CollectedUnit | null> {
      return withWorkspace(storesOf(deps), input.workDir, async (ws) => {
        const marker = await ws.pull(workKey.collectedMarker(input.unit.round, input.unit.index));
        if (!fs.existsSync(marker)) return null;
        // Found by a later run of the job: what the user's cancel stopped is to be sent again.
        const { cancelled = 0, ...prior } = (await readCollectedMarker(marker)) as CollectedUnit;
        return { ...prior, failed: prior.failed - cancelled, retry: prior.retry + cancelled };
      });
    },
  };

  /** What collection reads from the work folder: the unit's lines, origins and chat answers. */
  async function pullUnitFiles(ws: Workspace, input: CollectInput): Promise<void> {
    const { round, index } = input.unit;
    await ws.pull(workKey.unit(round, index));
    if (round > 1) await ws.pull(workKey.origin(round, index));
    if (input.chat) await ws.pull(workKey.chatResults(round, index));
  }

  /** The result files to read: the batch's output and error files, or the local chat results. */
  function resultSources(
    batch: OpenAI.Batches.Batch | undefined,
    local: string | undefined,
  ): (() => AsyncIterable<ByteLine>)[] {
    if (local) return [() => readByteLines(local)];
    const ids = [batch?.output_file_id, batch?.error_file_id].filter((x): x is string => !!x);
    return ids.map(
      (fileId) =>
        async function* () {
          const res = await call('download results', () => deps.openai.files.content(fileId));
          if (res.body) yield* splitByteLines(Readable.fromWeb(res.body));
        },
    );
  }

  /** The batch to collect, read from the provider unless the workflow's view of it is enough. */
  async function batchOf(input: CollectInput): Promise<OpenAI.Batches.Batch | undefined> {
    const id = input.batchId;
    if (!id) return undefined;
    const v = input.ended;
    if (v && v.status !== 'failed') {
      return {
        id,
        status: v.status,
        output_file_id: v.outputFileId,
        error_file_id: v.errorFileId,
      } as OpenAI.Batches.Batch;
    }
    return call('read batch', () => deps.openai.batches.retrieve(id));
  }

  /**
   * Reads the batch's output and error files (or the unit's Batch Chat file) and records each line
   * that names a request of the unit; malformed lines and lines naming none are accounted for.
   */
  async function readResults(
    out: UnitOutcomes,
    ids: Map<string, number>,
    batch: OpenAI.Batches.Batch | undefined,
    input: CollectInput,
  ): Promise<void> {
    const ctx = Context.current();
    const malformed = async (customId: string | undefined, excerpt: string, bytes: number) => {
      const p = customId === undefined ? undefined : ids.get(customId);
      const mine = p !== undefined && !out.seen[p];
      if (mine) await out.record(p, malformedLine(excerpt), NO_RESULT);
      else if (customId === undefined && out.unreadable.count++ === 0) out.unreadable.first = excerpt;
      // The line's content stays out of the log (it may hold the user's data); errors.jsonl quotes it.
      const whose = customId === undefined ? 'custom_id unreadable' : `custom_id ${JSON.stringify(customId)}`;
      logFor(deps).warn(
        { batchId: batch?.id, custom_id: customId ?? null, bytes },
        `malformed line in the provider's results (${whose}): ${mine ? 'that line fails' : 'no unanswered line of this unit names it'}`,
      );
    };
    let n = 0;
    const chatFile = input.chat ? chatResultsFile(input.workDir, input.unit) : undefined;
    for (const source of resultSources(batch, chatFile)) {
      for await (const line of source()) {
        const read = readResultFileLine(line.bytes);
        if (!read.ok) {
          await malformed(read.customId, read.excerpt, line.bytes.length);
          continue;
        }
        const parsed = read.parsed;
        const p = typeof parsed.custom_id === 'string' ? ids.get(parsed.custom_id) : undefined;
        if (p === undefined || out.seen[p]) {
          // Some servers report a batch's own failure as an error line under a custom_id of their
          // own (e.g. "turn"): that is the batch's reason, kept for its lines and the summary.
          const reason = p === undefined ? unattributedError(parsed) : undefined;
          if (reason && out.unattributed.length < MAX_UNATTRIBUTED) out.unattributed.push(reason);
          logFor(deps).warn(
            { batchId: batch?.id, custom_id: parsed.custom_id, ...(reason ? { error: reason } : {}) },
            reason
              ? `error line for custom_id ${JSON.stringify(parsed.custom_id)}, not in this batch: kept as the batch's failure (${reason.code}: ${reason.message})`
              : 'result line for an unknown or repeated custom_id: ignored',
          );
          continue;
        }
        await out.record(p, classifyResult(parsed, input.cancelledByUs), resultBytes(line.bytes, parsed));
        if (++n % 5000 === 0) ctx.heartbeat({ lines: n });
      }
    }
  }

  /** `ws`: the scratch workspace to commit to, on object storage. */
  async function collect(input: CollectInput, ws?: Workspace): Promise<CollectedCounts> {
    const { workDir, unit } = input;
    const batch = await batchOf(input);
    const status = batch?.status ?? 'completed';
    const origins = await loadOrigins(workDir, unit);
    const capture = AnswerCapture.open(deps, workDir, input.jobId);
    const { ids, list } = await loadIds(workDir, unit, capture);
    const out = new UnitOutcomes(workDir, unit, input.maxAttempts, list, origins, capture);
    const { counts, unattributed } = out;
    try {
      await readResults(out, ids, batch, input);
      await settleUnanswered(out, batch, input.cancelledByUs);
      await out.commit();
      const marker: CollectedUnit = {
        ...counts,
        cancelled: out.cancelled,
        batchId: batch?.id ?? null,
        batchStatus: status,
        fileErrors: batch && status === 'failed' ? toView(batch).errors : [],
        ...(unattributed.length ? { unattributed } : {}),
      };
      await writeJsonAtomic(collectedMarker(workDir, unit.round, unit.index), marker);
      if (ws) {
        // Outcomes first, the marker that vouches for them last, and only if no attempt committed one.
        for (const shard of out.writers.keys()) await ws.push(workKey.outcome(shard, unit.round, unit.index));
        await ws.push(workKey.collectedMarker(unit.round, unit.index), { ifAbsent: true });
      }
    } catch (err) {
      await capture?.close();
      await out.abort();
      throw err;
    }
    await capture?.close();
    logFor(deps).info({ batchId: batch?.id, unit, ...counts }, 'collected results');
    count('linesSucceeded', counts.succeeded);
    count('linesFailed', counts.failed);
    count('linesRetried', counts.retry);
    count('tokens', out.tokens);
    return {
      ...counts,
      ...(unattributed.length ? { unattributed } : {}),
      ...(out.cancelled ? { cancelled: out.cancelled } : {}),
      ...(out.tokens ? { usage: out.usage } : {}),
    };
  }
}
