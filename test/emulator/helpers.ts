// Shared set-up for the emulator tests: an emulator on a free port in a temporary data dir, the
// real openai client pointed at it, and small helpers to build inputs and wait for batches.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import {
  startEmulator,
  type EmulatorOptions,
  type EmulatorStats,
  type ResolvedFaults,
  type RunningEmulator,
} from '../../emulator/index.ts';

/** Timing fast enough for tests, slow enough to watch a batch move through its states. */
export const FAST = { validatingMs: 50, perLineMs: 1, finalizingMs: 50 } as const;

export interface Harness {
  emu: RunningEmulator;
  client: OpenAI;
  dataDir: string;
  /** Restarts the emulator on the same data dir (new port, new client). */
  restart(opts?: Partial<EmulatorOptions>): Promise<void>;
  close(): Promise<void>;
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'bp-emu-'));
}

export function clientFor(url: string, apiKey = 'test-key', maxRetries = 0): OpenAI {
  return new OpenAI({ baseURL: url, apiKey, maxRetries, timeout: 20_000 });
}

export async function harness(opts: Partial<EmulatorOptions> = {}): Promise<Harness> {
  const dataDir = opts.dataDir ?? tempDir();
  const base: EmulatorOptions = { port: 0, dataDir, faults: { ...FAST }, ...opts };
  const h: Harness = {
    emu: await startEmulator(base),
    client: undefined as unknown as OpenAI,
    dataDir,
    async restart(more = {}) {
      await h.emu.close();
      h.emu = await startEmulator({ ...base, ...more });
      h.client = clientFor(h.emu.url, base.apiKey);
    },
    async close() {
      await h.emu.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  h.client = clientFor(h.emu.url, base.apiKey);
  return h;
}

export interface ChatLineOptions {
  model?: string;
  url?: string;
  body?: Record<string, unknown>;
}

/** One request line for the chat endpoint, as a JSON string. */
export function chatLine(id: string, text: string, o: ChatLineOptions = {}): string {
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: o.url ?? '/v1/chat/completions',
    body: { model: o.model ?? 'qwen-plus', messages: [{ role: 'user', content: text }], ...o.body },
  });
}

export function chatFile(n: number, prefix = 'r'): string {
  return (
    Array.from({ length: n }, (_, i) => chatLine(`${prefix}-${i + 1}`, `question number ${i + 1}`)).join(
      '\n',
    ) + '\n'
  );
}

export async function upload(client: OpenAI, content: string | Buffer, name = 'input.jsonl') {
  return client.files.create({ file: await toFile(Buffer.from(content), name), purpose: 'batch' });
}

export async function createBatch(
  client: OpenAI,
  content: string,
  extra: { endpoint?: string; metadata?: Record<string, string>; completion_window?: string } = {},
): Promise<Batch> {
  const file = await upload(client, content);
  return client.batches.create({
    input_file_id: file.id,
    endpoint: (extra.endpoint ?? '/v1/chat/completions') as '/v1/chat/completions',
    completion_window: (extra.completion_window ?? '24h') as '24h',
    ...(extra.metadata ? { metadata: extra.metadata } : {}),
  });
}

const TERMINAL = ['completed', 'failed', 'expired', 'cancelled'];

/** Polls until the batch reaches one of `statuses` (default: any terminal one). */
export async function waitFor(
  client: OpenAI,
  id: string,
  statuses: string[] = TERMINAL,
  timeoutMs = 20_000,
): Promise<Batch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (statuses.includes(b.status)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What the tests read from a result body: a chat completion, embeddings or an error. */
export interface ResultBody {
  object: string;
  model: string;
  choices: { index: number; message: { role: string; content: string; reasoning_content?: string } }[];
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    completion_tokens_details: { reasoning_tokens: number };
  };
  data: { embedding: number[] }[];
  error: { code?: string; message?: string; error_code?: string; error_message?: string; type?: string };
}

export interface ResultLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: ResultBody } | null;
  error: { code?: string; message?: string; error_code?: string; error_message?: string } | null;
}

export async function download(client: OpenAI, fileId: string | null | undefined): Promise<ResultLine[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ResultLine);
}

/** Raw HTTP to the emulator for what the openai client does not cover (`/_emulator/*`). */
export async function raw(
  emu: RunningEmulator,
  method: string,
  pathname: string,
  body?: unknown,
  apiKey = 'test-key',
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(emu.url.replace(/\/v1$/, '') + pathname, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null, headers: res.headers };
}

export async function stats(emu: RunningEmulator): Promise<EmulatorStats> {
  return (await raw(emu, 'GET', '/_emulator/stats')).json as EmulatorStats;
}

export async function faultsOf(emu: RunningEmulator): Promise<ResolvedFaults> {
  return (await raw(emu, 'GET', '/_emulator/faults')).json as ResolvedFaults;
}

/** The error status the openai client saw for a call, or 'ok'. */
export async function statusOf(call: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await call;
    return 'ok';
  } catch (err) {
    if (err instanceof OpenAI.APIError && typeof err.status === 'number') return Number(err.status);
    throw err;
  }
}
