// Small HTTP helpers: replies as values (so a fault can drop a reply after the work is done),
// OpenAI-shaped error bodies, bounded JSON bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A JSON reply, or a reply that writes itself (file content streams). */
export type Reply =
  | { status: number; body: unknown; headers?: Record<string, string> }
  | { stream: (res: ServerResponse) => Promise<void> };

/** An error answered as `{"error": {message, type, param, code}}` with its status. */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly status: number;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    opts: { code?: string | null; param?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = status;
    this.code = opts.code ?? null;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }
}

export function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function errorReply(err: HttpError): Reply {
  return {
    status: err.status,
    headers: err.headers,
    body: { error: { message: err.message, type: errorType(err.status), param: err.param, code: err.code } },
  };
}

export async function send(res: ServerResponse, reply: Reply): Promise<void> {
  if ('stream' in reply) return reply.stream(res);
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...reply.headers,
  });
  res.end(text);
}

/** Reads and discards a request body, so an early answer does not cut off a client still sending. */
export async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return;
  await new Promise<void>((resolve) => {
    req
      .on('end', resolve)
      .on('error', () => resolve())
      .on('close', () => resolve());
    req.resume();
  });
}

const MAX_JSON_BYTES = 1_000_000;

/** Parses a JSON request body of at most 1 MB (API calls are small; files go through upload). */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES) {
      await drain(req);
      throw new HttpError(413, 'request body too large', { code: 'request_too_large' });
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON', { code: 'invalid_json' });
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
