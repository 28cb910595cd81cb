// A job on object storage that answers slowly: a stand-in in front of versitygw holds the first
// read of each unit's request file longer than an activity's heartbeat timeout (30 s), as a store
// far away or under load does for tens of MB. The upload copies that file to scratch before it
// sends it; the copy must count as progress, or every attempt would time out the same way. The
// job completes, and no upload attempt timed out.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectStore } from '../../storage/s3.ts';
import type { DevServer } from '../../worker/dev-server.ts';
import { startObjectTestBed, type ObjectTestBed } from '../support/object-server.ts';
import { FAST_FAULTS, startHarness, writeChatInput } from '../support/harness.ts';

const BUCKET = 'batchpilot-slow';
/** Longer than the upload's heartbeat timeout (workflows/shard-calls.ts). */
const HOLD_MS = 35_000;
const UNIT_FILE = /\/round-\d+\/shard-\d+\.jsonl$/;

/** Forwards to `target`; the first GET of each unit's request file waits HOLD_MS first. */
async function startSlowProxy(
  target: string,
): Promise<{ endpoint: string; held: string[]; close(): Promise<void> }> {
  const to = new URL(target);
  const held: string[] = [];
  const server = http.createServer((req, res) => {
    const key = new URL(req.url ?? '/', 'http://proxy').pathname;
    const hold = req.method === 'GET' && UNIT_FILE.test(key) && !held.includes(key);
    if (hold) held.push(key);
    setTimeout(
      () => {
        // The Host header is passed on unchanged: the request is signed for it.
        const upstream = http.request(
          { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            pipeline(answer, res).catch(() => res.destroy());
          },
        );
        upstream.on('error', () => {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        });
        pipeline(req, upstream).catch(() => upstream.destroy());
      },
      hold ? HOLD_MS : 0,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a job on a slow object store', () => {
  let bed: ObjectTestBed;
  let dir: string;
  let temporal: DevServer;
  let bundlePath: string;
  let proxy: Awaited<ReturnType<typeof startSlowProxy>>;

  beforeAll(async () => {
    bed = await startObjectTestBed('slow', BUCKET, async (server) => {
      proxy = await startSlowProxy(server.endpoint);
      return proxy.endpoint;
    });
    ({ dir, temporal, bundlePath } = bed);
  });
  afterAll(async () => {
    await proxy?.close();
    await bed?.close();
  });

  it('uploads a unit whose copy to scratch outlasts the heartbeat timeout, in one attempt', async () => {
    const h = await startHarness({
      temporalAddress: temporal.address,
      workflowBundlePath: bundlePath,
      storage: `s3://${BUCKET}/jobs`,
      scratchDir: path.join(dir, 'scratch'),
      faults: FAST_FAULTS,
    });
    try {
      const local = path.join(dir, writeChatInput(dir, 'in.jsonl', 10));
      const objects = new ObjectStore();
      await objects.write({ bucket: BUCKET, key: 'inputs/in.jsonl' }, fs.readFileSync(local));
      objects.close();
      const jobId = 'slow-store-job';
      const summary = await h.runJob(`s3://${BUCKET}/inputs/in.jsonl`, 'out', {}, jobId);
      expect(summary.lines).toMatchObject({ total: 10, succeeded: 10, failed: 0 });
      // The stand-in did hold the unit's first read (else this test proves nothing).
      expect(proxy.held).toHaveLength(1);

      const history = await h.client.workflow.getHandle(`${jobId}/shard-0`).fetchHistory();
      const uploads = (history.events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'uploadUnit',
      );
      expect(uploads).toHaveLength(1);
      const scheduled = uploads[0]!.eventId!;
      const attempts = (history.events ?? [])
        .filter(
          (e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === scheduled.toString(),
        )
        .map((e) => e.activityTaskStartedEventAttributes!.attempt);
      expect(attempts).toEqual([1]);
      // One upload request reached the provider: none was cut off by a timed-out attempt.
      expect((await h.stats()).requests.upload).toBe(1);
    } finally {
      await h.close();
    }
  });
});
