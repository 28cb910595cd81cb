// A counting HTTP proxy in front of an S3-compatible server: workers are pointed at it instead of
// the server (AWS_ENDPOINT_URL), and it tallies every request by S3 operation with the bytes each
// way and the error answers. The Host header is passed on unchanged, so the SigV4 signature the
// client computed for the proxy's address still verifies at the server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface OperationCount {
  requests: number;
  /** Request bodies (uploads). */
  bytesIn: number;
  /** Response bodies (downloads, listings). */
  bytesOut: number;
  errors: number;
}

export type S3Counts = Record<string, OperationCount>;

/** The S3 operation a path-style request is, from its method and query (enough for batchpilot's calls). */
export function operationOf(method: string, url: URL, headers: http.IncomingHttpHeaders): string {
  const q = url.searchParams;
  const isBucket = url.pathname.split('/').filter(Boolean).length <= 1;
  switch (method) {
    case 'GET':
      if (isBucket) return q.has('uploads') ? 'ListMultipartUploads' : 'ListObjects';
      return headers.range ? 'GetObject (range)' : 'GetObject';
    case 'HEAD':
      return isBucket ? 'HeadBucket' : 'HeadObject';
    case 'PUT':
      if (isBucket) return 'CreateBucket';
      if (q.has('partNumber')) return 'UploadPart';
      return headers['if-none-match'] ? 'PutObject (if absent)' : 'PutObject';
    case 'POST':
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      if (q.has('delete')) return 'DeleteObjects';
      return 'POST';
    case 'DELETE':
      return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    default:
      return method;
  }
}

/**
 * Which part of a job an object is, from its key: the work folder's first level under
 * `.batchpilot/` (`round-1`, `outcomes`, `final`, `job.json`…), else `outputs` for a job's output
 * names and `other` (inputs) for the rest.
 */
export function areaOf(url: URL): string {
  const key = decodeURIComponent(url.pathname).split('/').slice(2).join('/');
  if (!key) return 'bucket';
  const work = /(?:^|\/)\.batchpilot\/([^/]+)/.exec(key);
  if (work) return `work: ${work[1]!.replace(/^round-\d+$/, 'round-N')}`;
  if (/(?:^|\/)(results|errors|rejected)\.jsonl$|(?:^|\/)(manifest|summary)\.json$/.test(key))
    return 'outputs';
  return 'other (inputs)';
}

function counter(add: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      add(chunk.length);
      done(null, chunk);
    },
  });
}

export interface S3Counter {
  /** `http://127.0.0.1:<port>`: give this to clients as AWS_ENDPOINT_URL. */
  endpoint: string;
  /** By S3 operation. */
  counts(): S3Counts;
  /** The same requests by the part of the job their object is (areaOf). */
  areas(): S3Counts;
  reset(): void;
  close(): Promise<void>;
}

export async function startS3Counter(target: string): Promise<S3Counter> {
  const to = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2048 });
  let counts: S3Counts = {};
  let areas: S3Counts = {};
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const op = operationOf(req.method ?? 'GET', url, req.headers);
    const byOp = (counts[op] ??= { requests: 0, bytesIn: 0, bytesOut: 0, errors: 0 });
    const byArea = (areas[areaOf(url)] ??= { requests: 0, bytesIn: 0, bytesOut: 0, errors: 0 });
    const c = {
      error() {
        byOp.errors++;
        byArea.errors++;
      },
      add(field: 'bytesIn' | 'bytesOut', n: number) {
        byOp[field] += n;
        byArea[field] += n;
      },
    };
    byOp.requests++;
    byArea.requests++;
    const upstream = http.request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (answer) => {
        if ((answer.statusCode ?? 500) >= 400) c.error();
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        pipeline(
          answer,
          counter((n) => c.add('bytesOut', n)),
          res,
        ).catch(() => res.destroy());
      },
    );
    upstream.on('error', () => {
      c.error();
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    pipeline(
      req,
      counter((n) => c.add('bytesIn', n)),
      upstream,
    ).catch(() => upstream.destroy());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => structuredClone(counts),
    areas: () => structuredClone(areas),
    reset: () => {
      counts = {};
      areas = {};
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

/** Sums of a set of counts: requests, bytes each way, errors. */
export function totals(counts: S3Counts): OperationCount {
  const t = { requests: 0, bytesIn: 0, bytesOut: 0, errors: 0 };
  for (const c of Object.values(counts)) {
    t.requests += c.requests;
    t.bytesIn += c.bytesIn;
    t.bytesOut += c.bytesOut;
    t.errors += c.errors;
  }
  return t;
}
