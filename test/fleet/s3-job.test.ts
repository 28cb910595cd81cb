// A whole job on S3-compatible storage: the real Temporal dev server, the emulator over HTTP, a
// worker with BATCHPILOT_STORAGE=s3://… and its own scratch folder, versitygw as the store. The
// input is an object and the outputs are objects; every line ends in exactly one output, and the
// answers are those of the same job on a local folder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultSettings } from '../../emulator/index.ts';
import { fleetBinaries } from '../../scripts/fleet/binaries.ts';
import { anyFreePort } from '../../scripts/fleet/ports.ts';
import { newCredentials, startObjectStore, type ObjectStore as Server } from '../../scripts/fleet/s3.ts';
import { ObjectStore } from '../../storage/s3.ts';
import { startDevServer, type DevServer } from '../../worker/dev-server.ts';
import { bundleWorkflows } from '../../worker/worker.ts';
import { readJsonl, startHarness, writeChatInput, type Harness } from '../support/harness.ts';

const BUCKET = 'batchpilot-jobs';
const LIMITS = { maxLines: 40, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

interface Line {
  custom_id: string;
  response?: { body?: { choices?: { message?: { content?: string } }[] } };
  error?: { code?: string };
}

describe('a job on S3-compatible storage', () => {
  let dir: string;
  let temporal: DevServer;
  let server: Server;
  let objects: ObjectStore;
  let bundlePath: string;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-s3job-'));
    temporal = await startDevServer({ headless: true });
    bundlePath = path.join(dir, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, (await bundleWorkflows()).code);
    server = await startObjectStore({
      bin: fleetBinaries().versitygw,
      root: dir,
      port: await anyFreePort(),
      logDir: dir,
      credentials: newCredentials(),
    });
    // The worker's S3 client takes these from the environment, as a deployed worker does.
    const env = {
      AWS_ENDPOINT_URL: server.endpoint,
      AWS_REGION: server.region,
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    };
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    objects = new ObjectStore();
    await objects.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });
  afterAll(async () => {
    objects?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await server?.stop();
    await temporal?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const harness = (scratch: string, faults?: FaultSettings) =>
    startHarness({
      temporalAddress: temporal.address,
      workflowBundlePath: bundlePath,
      storage: `s3://${BUCKET}/jobs`,
      scratchDir: scratch,
      ...(faults ? { faults } : {}),
    });

  const object = async (key: string): Promise<Buffer> => buffer(await objects.read({ bucket: BUCKET, key }));
  const objectLines = async <T>(key: string): Promise<T[]> =>
    (await object(key))
      .toString('utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as T);

  it('reads an s3:// input, writes outputs under an s3:// --out, and answers as the same job on disk', async () => {
    const scratch = path.join(dir, 'scratch-a');
    const h: Harness = await harness(scratch);
    try {
      const name = writeChatInput(h.dataDir, 'in.jsonl', 150, ['qwen-plus', 'qwen-flash']);
      // A duplicate custom_id: rejected on both.
      fs.appendFileSync(
        path.join(h.dataDir, name),
        JSON.stringify({
          custom_id: 'req-3',
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'qwen-plus', messages: [] },
        }) + '\n',
      );
      const input = fs.readFileSync(path.join(h.dataDir, name));
      await objects.write({ bucket: BUCKET, key: 'inputs/in.jsonl' }, input);

      // Input given as an s3:// URI, --out relative: under BATCHPILOT_STORAGE's prefix.
      const onS3 = await h.runJob(`s3://${BUCKET}/inputs/in.jsonl`, 'out-s3', { limits: LIMITS });
      // The same job with absolute local paths, which stay on the local data root.
      const local = path.join(fs.realpathSync(h.dataDir), 'out-local');
      const onDisk = await h.runJob(path.join(fs.realpathSync(h.dataDir), name), local, { limits: LIMITS });

      expect(onS3.status).toBe('completed');
      expect(onS3.lines).toEqual({ total: 151, succeeded: 150, failed: 0, rejected: 1 });
      expect(onS3.lines).toEqual(onDisk.lines);
      expect(onS3.shards).toBe(onDisk.shards);
      expect(onS3.shards).toBe(4);

      const results = await objectLines<Line>('jobs/out-s3/results.jsonl');
      const localResults = readJsonl<Line>(path.join(local, 'results.jsonl'));
      expect(results.map((r) => r.custom_id)).toEqual(localResults.map((r) => r.custom_id));
      expect(results.map((r) => r.response?.body?.choices?.[0]?.message?.content)).toEqual(
        localResults.map((r) => r.response?.body?.choices?.[0]?.message?.content),
      );
      expect(await object('jobs/out-s3/rejected.jsonl')).toEqual(
        fs.readFileSync(path.join(local, 'rejected.jsonl')),
      );
      expect(await object('jobs/out-s3/errors.jsonl')).toEqual(
        fs.readFileSync(path.join(local, 'errors.jsonl')),
      );
      const manifest = JSON.parse((await object('jobs/out-s3/manifest.json')).toString()) as {
        input: string;
        shards: unknown[];
      };
      const localManifest = JSON.parse(fs.readFileSync(path.join(local, 'manifest.json'), 'utf8')) as {
        input: string;
        shards: unknown[];
      };
      expect(manifest.input).toBe(`s3://${BUCKET}/inputs/in.jsonl`);
      expect(manifest.shards).toEqual(localManifest.shards);
      const summary = JSON.parse((await object('jobs/out-s3/summary.json')).toString()) as {
        status: string;
        lines: unknown;
      };
      expect(summary.lines).toEqual(onS3.lines);

      // Nothing of the job on the worker's disk: no output folder on the data root, scratch emptied;
      // the work objects are cleared after success but the job record, as on disk.
      expect(fs.existsSync(path.join(h.dataDir, 'out-s3'))).toBe(false);
      expect(fs.readdirSync(scratch)).toEqual([]);
      const left: string[] = [];
      for await (const o of objects.list({ bucket: BUCKET, key: 'jobs/out-s3/.batchpilot/' }))
        left.push(o.key);
      expect(left).toEqual(['jobs/out-s3/.batchpilot/job.json']);
    } finally {
      await h.close();
    }
  });

  it('runs retry rounds through the store: every line ends in exactly one output', async () => {
    const scratch = path.join(dir, 'scratch-b');
    const h = await harness(scratch, {
      seed: 11,
      validatingMs: 50,
      perLineMs: 0,
      finalizingMs: 50,
      lineRetryableRate: 0.2,
      linePermanentRate: 0.05,
    });
    try {
      const name = writeChatInput(h.dataDir, 'faulty.jsonl', 120);
      await objects.write(
        { bucket: BUCKET, key: 'jobs/faulty.jsonl' },
        fs.readFileSync(path.join(h.dataDir, name)),
      );
      // Both relative: the input and the outputs under BATCHPILOT_STORAGE's prefix.
      const s = await h.runJob('faulty.jsonl', 'out-faulty', { limits: LIMITS, keepWorkDir: true });
      expect(s.status).toBe('completed');
      expect(s.rounds).toBeGreaterThan(1);
      const results = await objectLines<Line>('jobs/out-faulty/results.jsonl');
      const errors = await objectLines<Line>('jobs/out-faulty/errors.jsonl');
      const ids = [...results, ...errors].map((l) => l.custom_id).sort();
      expect(ids).toEqual(Array.from({ length: 120 }, (_, i) => `req-${i}`).sort());
      expect(results.length).toBe(s.lines.succeeded);
      expect(errors.length).toBe(s.lines.failed);
      expect(errors.length).toBeGreaterThan(0);
      // The retry rounds' units are objects too (kept with keepWorkDir).
      const round2: string[] = [];
      for await (const o of objects.list({ bucket: BUCKET, key: 'jobs/out-faulty/.batchpilot/round-2/' }))
        round2.push(o.key.split('/').pop()!);
      expect(round2).toContain('manifest.json');
      expect(round2.some((k) => k.endsWith('.origin'))).toBe(true);
      const stats = await h.stats();
      // One batch per (shard, round): never a second batch for a unit's file.
      expect(Object.values(stats.batchesByInputFile).every((b) => b === 1)).toBe(true);
      expect(stats.batchesCreated).toBeGreaterThan(s.shards);
      expect(fs.readdirSync(scratch)).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
