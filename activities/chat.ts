// Batch Chat mode: each line of a unit goes through the synchronous Batch Chat API, with bounded
// concurrency and a requests-per-second cap. Answers are appended to a local results file in the
// same envelope as a batch's output file, so collection and merge are the same as in file mode.
// The file is the checkpoint: a retried activity (worker restarted) skips every custom_id already
// in it and never re-sends a finished line.
//
// Retries: each request has one loop of its own, here. One activity sends thousands of requests,
// each of which the server may hold for up to an hour; failing the activity over one line's 429
// would abort every other request in flight (work the provider may already be doing) to retry one.
// So a line is retried in place, a few times, judged by the error map every provider call uses
// (provider-errors.ts: 408, 409, 429, 5xx and lost connections retry, other 4xx never) and waiting
// as long as the provider's Retry-After asks. A line still failing is written with its last error,
// and collection classifies it by the same map: a retryable one is sent again in the next round, a
// permanent one goes to errors.jsonl. The SDK client retries nothing itself (maxRetries 0), and
// Temporal retries the activity only when it fails as a whole (a worker lost): loops never nest.
//
// A provider that answers nothing (connection refused, a gateway's 502/503/504) is not one line's
// problem: while no line has been answered since a line's first such error, that line keeps being
// retried in place rather than written as failed (an outage must not use up the lines' rounds).
// Once no call has been answered for BATCHPILOT_UNREACHABLE_AFTER, the activity fails with
// `ProviderUnreachableLong`, as batch-mode provider calls do: the shard tells the job (progress and
// `status` say so) and runs the activity again, which resumes from its results file.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import type { Unit } from '../common/job-types.ts';
import type { ActivityDeps } from './deps.ts';
import { userFixable, userFixableFailure, type DiskContext } from './disk-errors.ts';
import { logFor } from './log.ts';
import { withHeartbeat } from './heartbeat.ts';
import { LineAppender } from './line-appender.ts';
import { readLines } from './lines.ts';
import { DEFAULT_UNREACHABLE_AFTER_MS, unreachableFailure } from './provider-calls.ts';
import { providerRetryDelay, readProviderError, toFailure, type ProviderError } from './provider-errors.ts';
import { storesOf } from './stores.ts';
import { chatResultsFile as chatResultsPath, unitFile, workKey } from '../storage/layout.ts';
import { withWorkspace } from '../storage/workspace.ts';

export interface ChatUnitInput {
  workDir: string;
  unit: Unit;
  /** Requests waiting for an answer at once (the API allows 10,000 per model). */
  concurrency: number;
  /** Requests started per second (the API allows 1,000 per account). */
  qps: number;
  /**
   * Return as soon as the provider answers one line (the shard's probe while it reports an outage,
   * sent with concurrency 1 so that stopping early abandons no request in flight).
   */
  untilAnswered?: boolean;
}

/** Attempts per line inside the activity before the line is left to the next round. */
const LINE_ATTEMPTS = 3;

/**
 * The longest Retry-After a line waits for inside the activity. A provider asking for more is
 * overloaded for a while: the line is written with its (retryable) error and the next round sends it.
 */
const MAX_LINE_WAIT_MS = 5 * 60_000;

export function chatResultsFile(workDir: string, unit: Unit): string {
  return chatResultsPath(workDir, unit.round, unit.index);
}

/** Drops a half-written last line (a crash mid-append) and returns the custom_ids already answered. */
async function resume(file: string): Promise<Set<string>> {
  const done = new Set<string>();
  const buf = await fsp.readFile(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!buf) return done;
  const end = buf.lastIndexOf(10) + 1;
  if (end < buf.length) await fsp.truncate(file, end);
  for await (const line of readLines(file))
    done.add((JSON.parse(line.text) as { custom_id: string }).custom_id);
  return done;
}

/** Spaces request starts at least 1000/qps ms apart. */
function pacer(qps: number): () => Promise<void> {
  const gap = 1000 / qps;
  let next = 0;
  return async () => {
    const now = Date.now();
    const at = Math.max(now, next);
    next = at + gap;
    if (at > now) await sleep(at - now);
  };
}

/** The longest pause between two attempts of a line while the provider answers nothing. */
const MAX_OUTAGE_WAIT_MS = 15_000;

/** Whether `e` says the provider answered nothing at all, rather than something about this line. */
function isOutageError(e: ProviderError): boolean {
  return e.status === null ? e.code === 'provider_unreachable' : [502, 503, 504].includes(e.status);
}

/**
 * Whether the provider has answered any line lately, across the activity's concurrent senders:
 * `since` is when calls began to fail with nothing answered after, undefined while answers come.
 */
class Outage {
  since: number | undefined;
  lastAnswerAt = 0;
  answered(): void {
    this.since = undefined;
    this.lastAnswerAt = Date.now();
  }
  failed(): void {
    this.since ??= Date.now();
  }
}

/** How long to wait before a line's next attempt, or undefined to stop trying it in this activity. */
function nextWait(e: ProviderError, attempt: number, providerSilent: boolean): number | undefined {
  if (e.kind !== 'retry') return undefined;
  if (providerSilent && isOutageError(e))
    return Math.min(providerRetryDelay(e) ?? 500 * 2 ** Math.min(attempt, 10), MAX_OUTAGE_WAIT_MS);
  if (attempt >= LINE_ATTEMPTS) return undefined;
  const wait = providerRetryDelay(e) ?? 500 * 2 ** attempt;
  return wait <= MAX_LINE_WAIT_MS ? wait : undefined;
}

/** A line's last error in the batch result envelope: the provider's own error body when it answered. */
function failedLine(customId: string, e: ProviderError): object {
  if (e.status === null)
    return {
      id: `chat_${customId}`,
      custom_id: customId,
      response: null,
      error: { code: e.code, message: e.message },
    };
  return {
    id: `chat_${customId}`,
    custom_id: customId,
    response: {
      status_code: e.status,
      request_id: e.requestId ?? '',
      body: { error: e.body ?? { code: e.code, message: e.message } },
    },
    error: null,
  };
}

/** Throws `ProviderUnreachableLong` once the provider has answered nothing for the threshold. */
type OutageCheck = (err: unknown) => void;

/** One line's answer, or its last error, in the batch result envelope. */
async function answer(
  openai: OpenAI,
  customId: string,
  body: Record<string, unknown>,
  signal: AbortSignal,
  outage: Outage,
  checkOutage: OutageCheck,
): Promise<object> {
  let firstFailureAt: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      const { data, request_id } = await openai.chat.completions
        .create(body as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, { signal })
        .withResponse();
      outage.answered();
      return {
        id: `chat_${request_id ?? customId}`,
        custom_id: customId,
        response: { status_code: 200, request_id: request_id ?? '', body: data },
        error: null,
      };
    } catch (err) {
      if (signal.aborted) throw err;
      const e = readProviderError(err);
      firstFailureAt ??= Date.now();
      if (isOutageError(e)) {
        outage.failed();
        checkOutage(err);
      } else outage.answered();
      const wait = nextWait(e, attempt, outage.lastAnswerAt < firstFailureAt);
      if (wait === undefined) return failedLine(customId, e);
      await sleep(wait, undefined, { signal });
    }
  }
}

/**
 * The activities of Batch Chat mode, built on the worker's dependencies. Long as a whole, not as a unit: each
 * inner function is one activity or one named step of one, sharing what this closure holds.
 */
export function chatActivities(deps: ActivityDeps) {
  return {
    /** Sends a unit's lines through Batch Chat; returns the local results file for collection. */
    async chatUnit(input: ChatUnitInput): Promise<{ file: string; sent: number; stoppedEarly?: boolean }> {
      const answersKey = workKey.chatResults(input.unit.round, input.unit.index);
      return withHeartbeat(() =>
        withWorkspace(storesOf(deps), input.workDir, async (ws) => {
          const ctx = Context.current();
          const chat = deps.chatOpenai ?? deps.openai;
          // On object storage: the answers so far and the unit's lines come to scratch, and the
          // answers go back however the activity ends (a retry resumes from them).
          await ws.pull(answersKey);
          await ws.pull(workKey.unit(input.unit.round, input.unit.index));
          const file = chatResultsFile(ws.dir, input.unit);
          const disk: DiskContext = {
            what: `write the Batch Chat answers of shard-${input.unit.index}/round-${input.unit.round}`,
            path: file,
            dataDir: deps.dataDir,
          };
          const done = await userFixable(async () => {
            await fsp.mkdir(path.dirname(file), { recursive: true });
            return resume(file);
          }, disk);
          const out = await userFixable(() => LineAppender.open(file), disk);
          const pace = pacer(input.qps);
          const lines = readLines(unitFile(ws.dir, input.unit.round, input.unit.index))[
            Symbol.asyncIterator
          ]();
          // The first failure stops the other senders: none goes on paying for answers nobody keeps.
          const stop = new AbortController();
          const signal = AbortSignal.any([ctx.cancellationSignal, stop.signal]);
          let first: unknown;
          let sent = 0;
          let stoppedEarly = false;
          const outage = new Outage();
          const after = deps.unreachableAfterMs ?? DEFAULT_UNREACHABLE_AFTER_MS;
          const checkOutage: OutageCheck = (err) => {
            const since = outage.since;
            if (since === undefined || Date.now() - since < after) return;
            const what = 'batch chat';
            throw unreachableFailure(deps, toFailure(err, what, chat.baseURL), since, what, chat.baseURL);
          };
          const sender = async () => {
            while (!stop.signal.aborted) {
              const next = await lines.next();
              if (next.done) return;
              const line = JSON.parse(next.value.text) as {
                custom_id: string;
                body: Record<string, unknown>;
              };
              if (done.has(line.custom_id)) continue;
              await pace();
              const result = await answer(chat, line.custom_id, line.body, signal, outage, checkOutage);
              await userFixable(() => out.append(JSON.stringify(result)), disk);
              sent++;
              ctx.heartbeat({ sent, resumedWith: done.size });
              if (input.untilAnswered && outage.lastAnswerAt > 0) {
                stoppedEarly = true;
                stop.abort();
              }
            }
          };
          const stopOnFailure = (err: unknown) => {
            first ??= err;
            stop.abort();
          };
          try {
            const senders = Array.from({ length: Math.max(1, input.concurrency) }, () =>
              sender().catch(stopOnFailure),
            );
            await Promise.all(senders);
          } finally {
            await lines.return(undefined);
            await out.close();
            await ws.push(answersKey);
          }
          if (first !== undefined) throw userFixableFailure(first, disk) ?? (first as Error);
          logFor(deps).info({ unit: input.unit, sent, skipped: done.size }, 'batch chat unit answered');
          return { file, sent, ...(stoppedEarly ? { stoppedEarly } : {}) };
        }),
      );
    },
  };
}
