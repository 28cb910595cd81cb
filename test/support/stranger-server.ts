// A stand-in for an OpenAI-compatible server that is not the emulator, written apart from it: a
// plain node:http proxy in front of the emulator that answers list routes 405 with an nginx HTML
// page (or, with `listDelayMs`, answers them slowly, as a busy provider does), and can take a
// batch create, pass it on, and drop the connection (or never answer).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Stranger {
  url: string;
  port: number;
  /** Creates received (including dropped ones). */
  creates: number;
  close(): Promise<void>;
}

const HTML_405 =
  '<html>\r\n<head><title>405 Not Allowed</title></head>\r\n<body>\r\n<center><h1>405 Not Allowed</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

export async function startStranger(
  target: string,
  opts: { port?: number; dropCreates?: number; hangCreates?: number; listDelayMs?: number } = {},
): Promise<Stranger> {
  let drops = opts.dropCreates ?? 0;
  let hangs = opts.hangCreates ?? 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = (req.url ?? '/').replace(/^\/v1/, '');
        const bare = path.split('?')[0];
        if (req.method === 'GET' && (bare === '/files' || bare === '/batches')) {
          if (opts.listDelayMs === undefined) {
            res.writeHead(405, { 'content-type': 'text/html' }).end(HTML_405);
            return;
          }
          await new Promise((r) => setTimeout(r, opts.listDelayMs));
        }
        const isCreate = req.method === 'POST' && bare === '/batches';
        if (isCreate) s.creates++;
        const headers: Record<string, string> = {};
        for (const k of ['content-type', 'authorization'])
          if (req.headers[k]) headers[k] = String(req.headers[k]);
        const body = chunks.length ? Buffer.concat(chunks) : undefined;
        const answer = await fetch(target + path, {
          method: req.method!,
          headers,
          ...(body ? { body } : {}),
        });
        const bytes = Buffer.from(await answer.arrayBuffer());
        if (isCreate && drops > 0) {
          // The batch exists now; the client never learns it.
          drops--;
          req.socket.destroy();
          return;
        }
        // The batch exists now, and the answer never comes (as for a worker that died waiting).
        if (isCreate && hangs-- > 0) return;
        res.writeHead(answer.status, {
          'content-type': answer.headers.get('content-type') ?? 'application/json',
        });
        res.end(bytes);
      })().catch(() => req.socket.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const s: Stranger = {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    creates: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return s;
}
