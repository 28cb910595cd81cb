// The Batch Chat activity against a stand-in server over HTTP, with the real openai client: each
// line is retried in place by the one error map (a 409 like any other call's, Retry-After obeyed,
// a 4xx never), and a disk that refuses its answers fails the activity with what to fix instead of
// killing the worker process.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import OpenAI from 'openai';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { chatActivities, chatResultsFile, type ChatUnitInput } from '../../activities/chat.ts';
import { classifyResult } from '../../activities/classify.ts';
import { unitFile } from '../../storage/layout.ts';
import { PROFILES } from '../../common/profiles.ts';
import { makeUnwritable, type Unwritable } from '../support/unwritable.ts';

/** What the stand-in answers the n-th request (from 1) carrying a given user message. */
type Script = (n: number) => { status: number; headers?: Record<string, string>; error?: object };

const SCRIPTS: Record<string, Script> = {
  'conflict-once': (n) =>
    n === 1
      ? { status: 409, error: { message: 'Conflict: the request is being processed', code: 'conflict' } }
      : { status: 200 },
  'bad-request': () => ({
    status: 400,
    error: { message: 'Range of input length should be [1, 30720]', code: 'InvalidParameter' },
  }),
  // A wait far beyond what a line waits for inside the activity: left to the next round at once.
  'slow-down': () => ({
    status: 429,
    headers: { 'retry-after': '3600' },
    error: { message: 'Requests rate limit exceeded', code: 'Throttling.RateQuota' },
  }),
  flaky: (n) =>
    n <= 2
      ? {
          status: 503,
          headers: { 'retry-after-ms': '20' },
          error: { message: 'busy', code: 'ServiceUnavailable' },
        }
      : { status: 200 },
};

interface StandIn {
  url: string;
  /** Requests received per user message. */
  seen: Map<string, number>;
  close(): Promise<void>;
}

/** A chat completions server that follows SCRIPTS; `onRequest` runs before it answers. */
async function startStandIn(onRequest: (content: string) => void = () => undefined): Promise<StandIn> {
  const seen = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        model: string;
        messages: { content: string }[];
      };
      const content = body.messages[0]!.content;
      const n = (seen.get(content) ?? 0) + 1;
      seen.set(content, n);
      onRequest(content);
      const answer = (SCRIPTS[content] ?? ((): ReturnType<Script> => ({ status: 200 })))(n);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      if (answer.status !== 200) {
        res.end(JSON.stringify({ error: answer.error }));
        return;
      }
      res.end(
        JSON.stringify({
          id: `chatcmpl-${content}-${n}`,
          object: 'chat.completion',
          created: 0,
          model: body.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: `answer to ${content}` },
              finish_reason: 'stop',
            },
          ],
          usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const dirs: string[] = [];
const servers: StandIn[] = [];
const locks: Unwritable[] = [];
afterEach(async () => {
  for (const l of locks.splice(0)) l.restore();
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A work dir holding round 1's unit 0 with one line per message (custom_id = the message). */
function unitWith(messages: string[]): { dataDir: string; input: ChatUnitInput } {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-chat-'));
  dirs.push(dataDir);
  const workDir = path.join(dataDir, 'out', '.batchpilot');
  const file = unitFile(workDir, 1, 0);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const lines = messages.map((m) =>
    JSON.stringify({ custom_id: m, body: { model: 'qwen-plus', messages: [{ role: 'user', content: m }] } }),
  );
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return {
    dataDir,
    input: { workDir, unit: { round: 1, index: 0, lines: messages.length }, concurrency: 4, qps: 1000 },
  };
}

async function runChatUnit(server: StandIn, dataDir: string, input: ChatUnitInput) {
  const openai = new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0 });
  const { chatUnit } = chatActivities({
    openai,
    profile: PROFILES.emulator,
    dataDir,
    logger: pino({ level: 'silent' }),
  });
  // The SDK logs a failed activity with its stack: the tests look at the failure itself.
  return new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') }).run<
    [ChatUnitInput],
    { file: string; sent: number },
    typeof chatUnit
  >(chatUnit, input);
}

interface Written {
  custom_id: string;
  response: { status_code: number; body: { error?: { code: string; message: string } } } | null;
  error: { code: string; message: string } | null;
}

const readResults = (file: string): Map<string, Written> =>
  new Map(
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Written)
      .map((r) => [r.custom_id, r]),
  );

describe('chatUnit', () => {
  it('retries each line by the one error map and writes what it could not fix as the provider said it', async () => {
    const server = await startStandIn();
    servers.push(server);
    const { dataDir, input } = unitWith(['plain', 'conflict-once', 'bad-request', 'slow-down', 'flaky']);
    const { file, sent } = await runChatUnit(server, dataDir, input);
    expect(sent).toBe(5);
    const results = readResults(file);
    // A 409 is retried as every provider call's is, and the line is answered.
    expect(results.get('conflict-once')?.response?.status_code).toBe(200);
    expect(server.seen.get('conflict-once')).toBe(2);
    // 503s with a Retry-After are waited out within the line's attempts.
    expect(results.get('flaky')?.response?.status_code).toBe(200);
    expect(server.seen.get('flaky')).toBe(3);
    // A 4xx is sent once and kept in the provider's own words; collection calls it permanent.
    expect(server.seen.get('bad-request')).toBe(1);
    const bad = classifyResult(results.get('bad-request')!);
    expect(bad).toMatchObject({
      kind: 'permanent',
      error: {
        code: 'InvalidParameter',
        message: 'Range of input length should be [1, 30720]',
        status_code: 400,
      },
    });
    // A Retry-After longer than a line waits here: sent once, left retryable for the next round.
    expect(server.seen.get('slow-down')).toBe(1);
    expect(classifyResult(results.get('slow-down')!)).toMatchObject({
      kind: 'retry',
      error: { code: 'Throttling.RateQuota', status_code: 429 },
    });
    expect(results.get('plain')?.response?.status_code).toBe(200);
    expect(server.seen.get('plain')).toBe(1);
  });

  it('fails with what to fix when the answers folder refuses the file, having sent nothing', async () => {
    const server = await startStandIn();
    servers.push(server);
    const { dataDir, input } = unitWith(['a', 'b', 'c']);
    const chatDir = path.dirname(chatResultsFile(input.workDir, input.unit));
    fs.mkdirSync(chatDir, { recursive: true });
    locks.push(makeUnwritable(chatDir));
    const failure = await runChatUnit(server, dataDir, input).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ type: 'UserFixable', nonRetryable: true });
    expect((failure as Error).message).toMatch(
      /^cannot write the Batch Chat answers of shard-0\/round-1: E(PERM|ROFS|ACCES) on .*r1-u0\.jsonl .*: (permission denied|the file system is read-only)/,
    );
    expect(server.seen.size).toBe(0);
  });

  it('fails with what to fix when a write fails mid-unit, and stops sending', async () => {
    const { dataDir, input } = unitWith(['one', 'two', 'lock', 'four', 'five']);
    input.concurrency = 1;
    const file = chatResultsFile(input.workDir, input.unit);
    // The answers file is locked while the third line's request is out: its answer cannot be kept.
    const server = await startStandIn((content) => {
      if (content === 'lock') locks.push(makeUnwritable(file));
    });
    servers.push(server);
    const failure = await runChatUnit(server, dataDir, input).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ type: 'UserFixable', nonRetryable: true });
    expect((failure as Error).message).toMatch(
      /^cannot write the Batch Chat answers of shard-0\/round-1: E\w+ on /,
    );
    expect([...server.seen.keys()]).toEqual(['one', 'two', 'lock']);
    for (const l of locks.splice(0)) l.restore();
    expect([...readResults(file).keys()]).toEqual(['one', 'two']);
  });
});
