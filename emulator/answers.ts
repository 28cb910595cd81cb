// Deterministic answers (docs/emulator.md): a chat completion echoes the last user message, usage counts
// about one token per four characters, embeddings are a unit vector derived from a hash of the
// input, and DashScope's test model gives its fixed answer. Same request, same content.
import { createHash } from 'node:crypto';
import { TEST_MODEL, thinksByDefault } from './limits.ts';
import { nowSeconds } from './objects.ts';

type Body = Record<string, unknown>;

const tokens = (chars: number): number => Math.max(1, Math.ceil(chars / 4));

/** Text of a message's content: a string or the text parts of a multimodal array. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) =>
        typeof p === 'object' && p !== null && 'text' in p ? String((p as { text: unknown }).text) : '',
      )
      .join(' ');
  }
  return '';
}

/**
 * Input tokens of one request as the emulator counts them (usage.prompt_tokens): the messages' text
 * for chat, the input texts for embeddings, DashScope's fixed 20 for its test model.
 */
export function promptTokensOf(endpoint: string, body: Body): number {
  if (endpoint === '/v1/chat/ds-test' || body.model === TEST_MODEL) return 20;
  if (endpoint === '/v1/embeddings') return tokens(embeddingTexts(body).reduce((n, t) => n + t.length, 0));
  return tokens(messagesOf(body).reduce((n, m) => n + m.text.length, 0));
}

function embeddingTexts(body: Body): string[] {
  const inputs = Array.isArray(body.input) ? (body.input as unknown[]) : [body.input];
  return inputs.map((i) => (typeof i === 'string' ? i : JSON.stringify(i)));
}

function messagesOf(body: Body): { role: string; text: string }[] {
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  return messages.map((m) => {
    const msg = (typeof m === 'object' && m !== null ? m : {}) as { role?: unknown; content?: unknown };
    return { role: typeof msg.role === 'string' ? msg.role : '', text: contentText(msg.content) };
  });
}

const ECHO_CHARS = 80;
const SPACE = /\s/;

/** `/\s/` on one UTF-16 unit, without the regex for ASCII (nearly every character it meets). */
function isSpace(code: number): boolean {
  if (code < 0x80) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  return SPACE.test(String.fromCharCode(code));
}

/**
 * `text.replace(/\s+/g, ' ').trim()`, computed only as far as `limit` characters and one more (the
 * echo shows 80; whole messages are ~1 KB and this ran for every line of every emulated batch).
 */
export function collapseSpaces(text: string, limit: number): string {
  let out = '';
  let space = false;
  for (let i = 0; i < text.length && out.length <= limit; i++) {
    if (isSpace(text.charCodeAt(i))) {
      space = out.length > 0;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += text[i]!;
  }
  return out;
}

/** The assistant's content for a chat request: a short echo of the last user message. */
export function echoContent(body: Body): string {
  const last = messagesOf(body).findLast((m) => m.role === 'user');
  const text = collapseSpaces(last?.text ?? '', ECHO_CHARS);
  return `echo: ${text.length > ECHO_CHARS ? `${text.slice(0, ECHO_CHARS)}…` : text}`;
}

function completion(idHex: string, body: Body, content: string, usage: object, reasoning?: string): Body {
  return {
    id: `chatcmpl-${idHex}`,
    object: 'chat.completion',
    created: nowSeconds(),
    model: body.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, ...(reasoning ? { reasoning_content: reasoning } : {}) },
        finish_reason: 'stop',
        logprobs: null,
      },
    ],
    usage,
  };
}

export function chatCompletion(body: Body, idHex: string): Body {
  const model = String(body.model);
  const content = echoContent(body);
  const thinking = typeof body.enable_thinking === 'boolean' ? body.enable_thinking : thinksByDefault(model);
  const reasoning = thinking ? `Thinking about: ${content.slice(6, 46)}` : undefined;
  const promptTokens = tokens(messagesOf(body).reduce((n, m) => n + m.text.length, 0));
  const reasoningTokens = reasoning ? tokens(reasoning.length) : 0;
  const completionTokens = tokens(content.length) + reasoningTokens;
  return completion(
    idHex,
    body,
    content,
    {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      ...(reasoning ? { completion_tokens_details: { reasoning_tokens: reasoningTokens } } : {}),
    },
    reasoning,
  );
}

/** DashScope's dry-run answer: fixed content and usage {20, 6, 26}. */
export function testModelCompletion(body: Body, idHex: string): Body {
  return completion(idHex, { ...body, model: TEST_MODEL }, 'This is a test result.', {
    prompt_tokens: 20,
    completion_tokens: 6,
    total_tokens: 26,
  });
}

const DEFAULT_DIMENSIONS = 16;

/** A unit vector of `dimensions` numbers from the hash of `text`. */
export function embeddingVector(text: string, dimensions = DEFAULT_DIMENSIONS): number[] {
  const raw: number[] = [];
  for (let block = 0; raw.length < dimensions; block++) {
    const digest = createHash('sha256').update(`${block}\u0000${text}`).digest();
    for (let i = 0; i + 1 < digest.length && raw.length < dimensions; i += 2) {
      raw.push(digest.readUInt16BE(i) / 32767.5 - 1);
    }
  }
  const norm = Math.hypot(...raw) || 1;
  return raw.map((v) => Math.round((v / norm) * 1e6) / 1e6);
}

export function embeddings(body: Body): Body {
  const texts = embeddingTexts(body);
  const dims =
    typeof body.dimensions === 'number' && Number.isInteger(body.dimensions) && body.dimensions > 0
      ? Math.min(body.dimensions, 4096)
      : DEFAULT_DIMENSIONS;
  const promptTokens = tokens(texts.reduce((n, t) => n + t.length, 0));
  return {
    object: 'list',
    data: texts.map((t, index) => ({ object: 'embedding', index, embedding: embeddingVector(t, dims) })),
    model: body.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

/**
 * The successful body for one request on `endpoint`, or the line-level error it earns. `idHex` names
 * the completion (`chatcmpl-<idHex>`): deterministic, from the caller (a batch line's digest, a chat
 * request's hash).
 */
export function answer(
  endpoint: string,
  body: Body,
  idHex: string,
): { ok: true; body: Body } | { ok: false; status: number; code: string; message: string } {
  const isTestModel = body.model === TEST_MODEL;
  if (endpoint === '/v1/chat/ds-test') return { ok: true, body: testModelCompletion(body, idHex) };
  if (isTestModel) {
    return {
      ok: false,
      status: 400,
      code: 'mismatched_test_url',
      message: `${TEST_MODEL} is served only on /v1/chat/ds-test`,
    };
  }
  if (endpoint === '/v1/embeddings') return { ok: true, body: embeddings(body) };
  return { ok: true, body: chatCompletion(body, idHex) };
}
