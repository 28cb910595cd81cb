// A Temporal codec server: the Web UI and `temporal workflow show --codec-endpoint` send the
// encrypted payloads they display to POST /decode (and /encode for what they send), as
// {"payloads": [{"metadata": {"<key>": "<base64>"}, "data": "<base64>"}]} with an X-Namespace
// header, and show what comes back. The key stays on this server; browsers need CORS for the UI's
// origin, and an Authorization value can be required of every caller.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { Logger } from 'pino';

export interface CodecServerOptions {
  codec: PayloadCodec;
  port: number;
  host: string;
  /** Origins allowed to call from a browser (the Web UI's, e.g. http://localhost:8233); `*` for any. */
  corsOrigins: string[];
  /** When set, every POST must carry exactly this Authorization header. */
  authorization?: string;
  logger: Logger;
}

export interface RunningCodecServer {
  url: string;
  close(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

/** Payloads are at most a few MB each (Temporal refuses more); a request carries a page of them. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export function payloadFromJson(p: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

export function payloadToJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parsePayloads(text: string): Payload[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not JSON: send {"payloads": [...]}');
  }
  const payloads = (json as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(payloads)) throw new HttpError(400, 'the body needs a "payloads" array');
  return payloads.map((p) => payloadFromJson(p as JsonPayload));
}

export function startCodecServer(opts: CodecServerOptions): Promise<RunningCodecServer> {
  const log = opts.logger.child({ component: 'codec-server' });
  const allowAny = opts.corsOrigins.includes('*');

  const cors = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    const origin = req.headers.origin;
    if (!origin) return true;
    if (!allowAny && !opts.corsOrigins.includes(origin)) return false;
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Vary', 'Origin');
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Access-Control-Max-Age', '600');
    return true;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const allowed = cors(req, res);
    const route = (req.url ?? '').split('?')[0]!.replace(/\/+$/, '');
    if (req.method === 'OPTIONS') {
      res.writeHead(allowed ? 204 : 403).end();
      return;
    }
    if (!allowed) throw new HttpError(403, `origin ${req.headers.origin} is not allowed (--cors-origin)`);
    if (req.method !== 'POST' || (route !== '/encode' && route !== '/decode'))
      throw new HttpError(404, 'POST /encode or POST /decode');
    if (opts.authorization !== undefined && req.headers.authorization !== opts.authorization)
      throw new HttpError(401, 'missing or wrong Authorization header');
    const payloads = parsePayloads(await readBody(req));
    let out: Payload[];
    try {
      out = route === '/encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
    } catch (err) {
      // A wrong key fails authentication of the ciphertext: the caller's problem, not ours.
      throw new HttpError(400, `cannot ${route.slice(1)}: ${(err as Error).message}`);
    }
    log.debug({ route, namespace: req.headers['x-namespace'], payloads: out.length }, 'codec request');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ payloads: out.map(payloadToJson) }));
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) log.error({ err }, 'codec request failed');
      if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: (err as Error).message }));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      const { port } = server.address() as AddressInfo;
      const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
      resolve({
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
