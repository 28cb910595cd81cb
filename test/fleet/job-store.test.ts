// S3-compatible storage (versitygw, built by `BATCHPILOT_FLEET=1 bash scripts/setup.sh`) as a
// JobStore: the same contract as the local folder (test/support/store-contract.ts), a workspace's
// scratch copy and commit, and steps retried after their commit leaving the committed objects as
// they were.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import OpenAI from 'openai';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectActivities, type CollectInput } from '../../activities/collect.ts';
import type { CollectedCounts } from '../../activities/collect.ts';
import type { ActivityDeps } from '../../activities/deps.ts';
import { mergeActivities } from '../../activities/merge.ts';
import { PROFILES } from '../../common/profiles.ts';
import { fleetBinaries } from '../../scripts/fleet/binaries.ts';
import { anyFreePort } from '../../scripts/fleet/ports.ts';
import { newCredentials, startObjectStore, type ObjectStore as Server } from '../../scripts/fleet/s3.ts';
import { ObjectStore } from '../../storage/s3.ts';
import { S3Store } from '../../storage/store.ts';
import { Stores } from '../../storage/workspace.ts';
import { storeContract } from '../support/store-contract.ts';

const BUCKET = 'batchpilot-store';
let dir: string;
let server: Server;
let objects: ObjectStore;
let stores: Stores;
let n = 0;
const prefix = (): string => `t${process.pid}-${++n}`;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-jobstore-'));
  server = await startObjectStore({
    bin: fleetBinaries().versitygw,
    root: dir,
    port: await anyFreePort(),
    logDir: dir,
    credentials: newCredentials(),
  });
  const s3 = {
    env: { AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: server.region },
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  };
  objects = new ObjectStore(s3);
  await objects.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  stores = new Stores({ scratchDir: path.join(dir, 'scratch'), s3 });
});
afterAll(async () => {
  stores?.close();
  objects?.close();
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

storeContract('S3 (versitygw)', () => new S3Store(objects, { bucket: BUCKET, key: prefix() }));

describe('a workspace on S3', () => {
  it('pulls objects into a scratch folder of its own, pushes what it made, and leaves no scratch', async () => {
    const out = `s3://${BUCKET}/${prefix()}/out`;
    const store = stores.forOut(out);
    await store.write('.batchpilot/round-1/shard-00000.jsonl', 'a\nb\n');
    await store.write('.batchpilot/outcomes/shard-00000/r1-u0.jsonl', 'x\n');
    await store.write('.batchpilot/outcomes/shard-00000/r2-u0.jsonl', 'y\n');
    const ws = await stores.workspace(`${out}/.batchpilot`);
    expect(ws.remote).toBe(true);
    expect(ws.dir.startsWith(path.join(dir, 'scratch'))).toBe(true);
    const local = await ws.pull('round-1/shard-00000.jsonl');
    expect(fs.readFileSync(local, 'utf8')).toBe('a\nb\n');
    await ws.pullPrefix('outcomes/shard-00000/', (k) => k.includes('/r2-'));
    expect(fs.readdirSync(ws.local('outcomes/shard-00000'))).toEqual(['r2-u0.jsonl']);
    // Absent objects are absent locally too: the activity's own code sees ENOENT as it would on disk.
    expect(fs.existsSync(await ws.pull('round-1/manifest.json'))).toBe(false);
    fs.mkdirSync(ws.local('round-2'), { recursive: true });
    fs.writeFileSync(ws.local('round-2/shard-00000.jsonl'), 'b\n');
    fs.writeFileSync(ws.local('round-2/manifest.json'), '{}\n');
    await ws.pushPrefix('round-2', (k) => k === 'round-2/manifest.json');
    expect(await ws.push('round-2/manifest.json', { ifAbsent: true })).toBe(false);
    expect((await store.readBytes('.batchpilot/round-2/shard-00000.jsonl'))?.toString()).toBe('b\n');
    await ws.evict('outcomes/shard-00000');
    expect(fs.existsSync(ws.local('outcomes/shard-00000'))).toBe(false);
    await ws.release();
    expect(fs.existsSync(path.dirname(ws.dir))).toBe(false);
    expect(await store.size('.batchpilot/outcomes/shard-00000/r2-u0.jsonl')).toBe(2);
  });
});

describe('steps retried after their commit on S3', () => {
  const deps = (): ActivityDeps => ({
    // Never called: a committed unit is answered from its marker.
    openai: new OpenAI({ apiKey: 'unused', baseURL: 'http://127.0.0.1:9/v1', maxRetries: 0 }),
    profile: PROFILES.emulator,
    dataDir: dir,
    logger: pino({ level: 'silent' }),
    stores,
  });

  it('a collect retried after its marker was committed returns the committed counts and writes nothing', async () => {
    const out = `s3://${BUCKET}/${prefix()}/out`;
    const store = stores.forOut(out);
    const marker = JSON.stringify({
      succeeded: 2,
      failed: 1,
      retry: 0,
      cancelled: 0,
      batchId: 'batch_1',
      batchStatus: 'completed',
      fileErrors: [],
    });
    await store.write('.batchpilot/outcomes/collected/r1-u0.json', marker);
    await store.write('.batchpilot/outcomes/shard-00000/r1-u0.jsonl', 'committed outcomes\n');
    const before = new Map<string, number>();
    for await (const o of store.list('.batchpilot/')) before.set(o.key, o.size);
    const { collectUnit } = collectActivities(deps());
    const input: CollectInput = {
      workDir: `${out}/.batchpilot`,
      jobId: 'job-1',
      unit: { round: 1, index: 0, lines: 3 },
      batchId: 'batch_1',
      cancelledByUs: false,
      maxAttempts: 3,
    };
    const counts = await new MockActivityEnvironment().run<
      [CollectInput],
      CollectedCounts,
      typeof collectUnit
    >(collectUnit, input);
    expect(counts).toEqual({ succeeded: 2, failed: 1, retry: 0 });
    const after = new Map<string, number>();
    for await (const o of store.list('.batchpilot/')) after.set(o.key, o.size);
    expect(after).toEqual(before);
    expect((await store.readBytes('.batchpilot/outcomes/collected/r1-u0.json'))?.toString()).toBe(marker);
    expect((await store.readBytes('.batchpilot/outcomes/shard-00000/r1-u0.jsonl'))?.toString()).toBe(
      'committed outcomes\n',
    );
  });

  it("a writeSummary retried after its commit keeps the committed summary; another job's is replaced", async () => {
    const out = `s3://${BUCKET}/${prefix()}/out`;
    const store = stores.forOut(out);
    const { writeSummary } = mergeActivities(deps());
    type Args = [{ outDir: string; summary: unknown; removeWorkDir: boolean }];
    const write = (summary: unknown) =>
      new MockActivityEnvironment().run<Args, void, typeof writeSummary>(writeSummary, {
        outDir: out,
        summary,
        removeWorkDir: false,
      });
    await write({ workflowId: 'job-a', finishedAt: 'first' });
    await write({ workflowId: 'job-a', finishedAt: 'retried' });
    const text = async () => (await buffer(await store.read('summary.json'))).toString();
    expect(JSON.parse(await text())).toEqual({ workflowId: 'job-a', finishedAt: 'first' });
    await write({ workflowId: 'job-b', finishedAt: 'other job' });
    expect(JSON.parse(await text())).toEqual({ workflowId: 'job-b', finishedAt: 'other job' });
  });
});
