// The HTTP front: routing, the bearer check, request counting and injected HTTP faults, in that
// order, before a handler runs.
import http from 'node:http';
import type { EmulatorState, Handler } from './context.ts';
import { HttpError, drain, errorReply, send, type Reply } from './http.ts';
import { draw, pick } from './random.ts';
import { PUBLISHED_RATES } from './rate-limits.ts';
import type { RouteName } from './routes.ts';
import { createBatch, cancelBatch, listBatches, retrieveBatch } from './routes-batches.ts';
import { syncRequest } from './routes-chat.ts';
import { deleteFile, fileContent, listFiles, retrieveFile, uploadFile } from './routes-files.ts';
import { getFaults, setFaults, stats } from './routes-admin.ts';

interface RouteDef {
  method: string;
  pattern: RegExp;
  route: RouteName;
  handler: Handler;
}

const ID = '([^/]+)';
const ROUTES: RouteDef[] = [
  { method: 'POST', pattern: /^\/v1\/files$/, route: 'upload', handler: uploadFile },
  { method: 'GET', pattern: /^\/v1\/files$/, route: 'files', handler: listFiles },
  { method: 'GET', pattern: new RegExp(`^/v1/files/${ID}/content$`), route: 'content', handler: fileContent },
  { method: 'GET', pattern: new RegExp(`^/v1/files/${ID}$`), route: 'files', handler: retrieveFile },
  { method: 'DELETE', pattern: new RegExp(`^/v1/files/${ID}$`), route: 'files', handler: deleteFile },
  { method: 'POST', pattern: /^\/v1\/batches$/, route: 'create', handler: createBatch },
  { method: 'GET', pattern: /^\/v1\/batches$/, route: 'list', handler: listBatches },
  { method: 'GET', pattern: new RegExp(`^/v1/batches/${ID}$`), route: 'retrieve', handler: retrieveBatch },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/batches/${ID}/cancel$`),
    route: 'cancel',
    handler: cancelBatch,
  },
  { method: 'POST', pattern: /^\/v1\/chat\/completions$/, route: 'chat', handler: syncRequest },
  { method: 'POST', pattern: /^\/v1\/chat\/ds-test$/, route: 'chat', handler: syncRequest },
  { method: 'POST', pattern: /^\/v1\/embeddings$/, route: 'chat', handler: syncRequest },
  { method: 'GET', pattern: /^\/_emulator\/stats$/, route: 'stats', handler: stats },
  { method: 'GET', pattern: /^\/_emulator\/faults$/, route: 'faults', handler: getFaults },
  { method: 'POST', pattern: /^\/_emulator\/faults$/, route: 'faults', handler: setFaults },
];

/** Calls whose work an injected 5xx may complete before the answer is lost, as on a real network. */
const NOT_IDEMPOTENT: RouteName[] = ['create', 'upload'];

function match(method: string, pathname: string): { def: RouteDef; params: string[] } | null {
  for (const def of ROUTES) {
    if (def.method !== method) continue;
    const m = def.pattern.exec(pathname);
    if (m) return { def, params: m.slice(1).map((p) => decodeURIComponent(p)) };
  }
  return null;
}

async function run(handler: () => Reply | Promise<Reply>): Promise<Reply> {
  try {
    return await handler();
  } catch (err) {
    if (err instanceof HttpError) return errorReply(err);
    throw err;
  }
}

/** The fault drawn for the n-th request on a route, if any (seeded: reproducible per route). */
function httpFault(
  state: EmulatorState,
  route: RouteName,
  n: number,
): { reply: Reply; afterWork: boolean } | null {
  const f = state.faults();
  if (f.http.rate <= 0 || !f.http.routes.includes(route)) return null;
  if (draw(f.seed, 'http', route, n) >= f.http.rate) return null;
  const status = pick(f.http.statuses, draw(f.seed, 'http-status', route, n));
  // Half of the injected 429s carry `Retry-After: 1`, so clients meet both kinds of throttling.
  const headers: Record<string, string> =
    status === 429 && draw(f.seed, 'retry-after', route, n) < 0.5 ? { 'retry-after': '1' } : {};
  const afterWork = status >= 500 && NOT_IDEMPOTENT.includes(route) && draw(f.seed, 'lost', route, n) < 0.5;
  const reply = errorReply(
    new HttpError(status, `injected fault: ${status} on ${route}`, { code: 'injected_fault', headers }),
  );
  return { reply, afterWork };
}

/** Milliseconds until `route` may be called again under the configured rate limits; 0 if now. */
function throttle(state: EmulatorState, route: RouteName): number {
  const limits = state.faults().rateLimits;
  const rates = limits === 'published' ? PUBLISHED_RATES[state.profile] : limits;
  return state.rateLimiter.take(route, rates[route]);
}

/** DashScope's throttling answer, with the seconds to wait. */
function throttledReply(waitMs: number): Reply {
  return errorReply(
    new HttpError(429, 'Requests rate limit exceeded, please try again later.', {
      code: 'Throttling.RateQuota',
      headers: { 'retry-after': String(Math.ceil(waitMs / 1000)) },
    }),
  );
}

/** A framework's own error body (`{"detail": …}`), not the OpenAI error shape. */
async function bare(status: number, detail: string, req: http.IncomingMessage): Promise<Reply> {
  await drain(req);
  return { status, body: { detail } };
}

function authorized(req: http.IncomingMessage, apiKey: string | undefined): boolean {
  if (apiKey === undefined) return true;
  return req.headers.authorization === `Bearer ${apiKey}`;
}

const UNAUTHORIZED = errorReply(
  new HttpError(401, 'Incorrect API key provided.', { code: 'invalid_api_key' }),
);

export function createServer(state: EmulatorState, apiKey: string | undefined): http.Server {
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const found = match(req.method ?? 'GET', url.pathname);
    if (!found) {
      await drain(req);
      return send(
        res,
        errorReply(new HttpError(404, `no route for ${req.method} ${url.pathname}`, { code: 'not_found' })),
      );
    }
    const { def, params } = found;
    const n = state.store.countRequest(def.route);
    if (state.faults().quirks.includes('no-list-routes') && req.method === 'GET') {
      // As a bare OpenAI-compatible server (a FastAPI one, say): no list routes at all.
      if (def.handler === listFiles) return send(res, await bare(404, 'Not Found', req));
      if (def.handler === listBatches) return send(res, await bare(405, 'Method Not Allowed', req));
    }
    if (!authorized(req, apiKey)) {
      await drain(req);
      return send(res, UNAUTHORIZED);
    }
    const wait = throttle(state, def.route);
    if (wait > 0) {
      await drain(req);
      state.store.throttled[def.route] = (state.store.throttled[def.route] ?? 0) + 1;
      return send(res, throttledReply(wait));
    }
    const ctx = { req, url, params, state };
    const fault = httpFault(state, def.route, n);
    if (fault) {
      if (fault.afterWork) await run(() => def.handler(ctx));
      await drain(req);
      state.logger.debug({ route: def.route, n }, 'injected http fault');
      return send(res, fault.reply);
    }
    return send(res, await run(() => def.handler(ctx)));
  };
  return http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      state.logger.error({ err, method: req.method, url: req.url }, 'request failed');
      if (!res.headersSent) {
        void send(
          res,
          errorReply(new HttpError(500, 'internal error in the emulator', { code: 'InternalError' })),
        );
      } else {
        res.destroy();
      }
    });
  });
}
