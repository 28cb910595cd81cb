// Batch Chat mode: each line of a unit goes through the synchronous Batch Chat API, with bounded
// concurrency and a requests-per-second cap. Answers are appended to a local results file in the
// same envelope as a batch's output file, so collection and merge are the same as in file mode.
// The file is the checkpoint: a retried activity (worker restarted) skips every custom_id already
// in it and never re-sends a finished line.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { APIConnectionError, APIError } from 'openai';
import type OpenAI from 'openai';
import type { Unit } from '../common/job-types.ts';
import type { ActivityDeps } from './deps.ts';
import { logFor } from './log.ts';
import { withHeartbeat } from './heartbeat.ts';
import { readLines } from './lines.ts';
import { retryAfterMs } from './provider-errors.ts';
import { chatResultsFile as chatResultsPath, unitFile } from '../storage/layout.ts';

export interface ChatUnitInput {
  workDir: string;
  unit: Unit;
  /** Requests waiting for an answer at once (the API allows 10,000 per model). */
  concurrency: number;
  /** Requests started per second (the API allows 1,000 per account). */
  qps: number;
}

/** Attempts per line inside the activity before the line is left to the next round. */
const LINE_ATTEMPTS = 3;

export function chatResultsFile(workDir: string, unit: Unit): string {
  return chatResultsPath(workDir, unit.round, unit.index);
}

/** Drops a half-written last line (a crash mid-append) and returns the custom_ids already answered. */
async function resume(file: string): Promise<Set<string>> {
  const done = new Set<string>();
  if (!fs.existsSync(file)) return done;
  const buf = await fsp.readFile(file);
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
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  };
}

function retryable(err: unknown): boolean {
  if (err instanceof APIConnectionError) return true;
  return err instanceof APIError && (err.status === 429 || err.status === 408 || (err.status ?? 0) >= 500);
}

/** One line's answer, or its last error, in the batch result envelope. */
async function answer(
  openai: OpenAI,
  customId: string,
  body: Record<string, unknown>,
  signal: AbortSignal,
): Promise<object> {
  let lastErr: unknown;
  for (let attempt = 1; attempt <= LINE_ATTEMPTS; attempt++) {
    try {
      const { data, request_id } = await openai.chat.completions
        .create(body as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, { signal })
        .withResponse();
      return {
        id: `chat_${request_id ?? customId}`,
        custom_id: customId,
        response: { status_code: 200, request_id: request_id ?? '', body: data },
        error: null,
      };
    } catch (err) {
      if (signal.aborted) throw err;
      lastErr = err;
      if (!retryable(err) || attempt === LINE_ATTEMPTS) break;
      const wait =
        (err instanceof APIError ? retryAfterMs(err.headers as Headers | undefined) : undefined) ??
        500 * 2 ** attempt;
      await new Promise((r) => setTimeout(r, Math.min(wait, 30_000)));
    }
  }
  if (lastErr instanceof APIError && typeof lastErr.status === 'number') {
    return {
      id: `chat_${customId}`,
      custom_id: customId,
      response: {
        status_code: lastErr.status,
        request_id: lastErr.requestID ?? '',
        body: { error: (lastErr.error as object | undefined) ?? { message: lastErr.message } },
      },
      error: null,
    };
  }
  const message = (lastErr as Error)?.message ?? String(lastErr);
  return {
    id: `chat_${customId}`,
    custom_id: customId,
    response: null,
    error: { code: 'request_timeout', message },
  };
}

export function chatActivities(deps: ActivityDeps) {
  return {
    /** Sends a unit's lines through Batch Chat; returns the local results file for collection. */
    async chatUnit(input: ChatUnitInput): Promise<{ file: string; sent: number }> {
      return withHeartbeat(async () => {
        const ctx = Context.current();
        const chat = deps.chatOpenai ?? deps.openai;
        const file = chatResultsFile(input.workDir, input.unit);
        await fsp.mkdir(path.dirname(file), { recursive: true });
        const done = await resume(file);
        const out = fs.createWriteStream(file, { flags: 'a' });
        const pace = pacer(input.qps);
        const lines = readLines(unitFile(input.workDir, input.unit.round, input.unit.index))[
          Symbol.asyncIterator
        ]();
        let sent = 0;
        const worker = async () => {
          for (;;) {
            const next = await lines.next();
            if (next.done) return;
            const line = JSON.parse(next.value.text) as { custom_id: string; body: Record<string, unknown> };
            if (done.has(line.custom_id)) continue;
            await pace();
            const result = await answer(chat, line.custom_id, line.body, ctx.cancellationSignal);
            out.write(JSON.stringify(result) + '\n');
            sent++;
            ctx.heartbeat({ sent, resumedWith: done.size });
          }
        };
        try {
          await Promise.all(Array.from({ length: Math.max(1, input.concurrency) }, worker));
        } finally {
          await new Promise<void>((resolve) => out.end(resolve));
        }
        logFor(deps).info({ unit: input.unit, sent, skipped: done.size }, 'batch chat unit answered');
        return { file, sent };
      });
    },
  };
}
