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
import { clientOptionsOf, startTestObjectServer, type Server } from '../support/object-server.ts';
import { ObjectStore } from '../../storage/s3.ts';
import { S3Store } from '../../storage/store.ts';
import { Stores } from '../../storage/workspace.ts';
import { storeContract } from '../support/store-contract.ts';
import { checkJobInStore, jobLocations, outputsOf, writeStoredResultsCsv } from '../../client/job-store.ts';
import { decideJob } from '../../client/job-folder.ts';
import { jobFingerprint } from '../../common/job-record.ts';
import { JOB_DEFAULTS, type JobInput } from '../../common/job-types.ts';

const BUCKET = 'batchpilot-store';
let dir: string;
let server: Server;
let objects: ObjectStore;
let stores: Stores;
let n = 0;
const prefix = (): string => `t${process.pid}-${++n}`;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-jobstore-'));
  server = await startTestObjectServer(dir);
  const s3 = clientOptionsOf(server);
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

describe('the CLI on a job in S3', () => {
  it('checks the input, reads the job record and summary, lists the outputs and writes results.csv', async () => {
    const base = `s3://${BUCKET}/${prefix()}`;
    const job: JobInput = { input: 'in.jsonl', outDir: 'out', options: { ...JOB_DEFAULTS } } as JobInput;
    const where = jobLocations(dir, base, job)!;
    expect(where).toEqual({ input: `${base}/in.jsonl`, out: `${base}/out` });
    expect(jobLocations(dir, undefined, job)).toBeUndefined();
    await expect(checkJobInStore(stores, where, job)).rejects.toThrow(/input in.jsonl does not exist/);
    const inputs = stores.forOut(base);
    await inputs.write('in.jsonl', '');
    await expect(checkJobInStore(stores, where, job)).rejects.toThrow(/nothing to send/);
    await inputs.write('in.jsonl', '{"custom_id":"a"}\n');
    const fresh = await checkJobInStore(stores, where, job);
    expect(fresh.record).toBeNull();
    expect(
      decideJob({ local: fresh, job, requestedId: undefined, force: false, newId: () => 'new-1' }),
    ).toEqual({
      kind: 'new',
      id: 'new-1',
    });
    // The folder's job finished: the same command reports it rather than starting it again.
    const out = stores.forOut(where.out);
    const record = { jobId: 'job-1', fingerprint: jobFingerprint(job, fresh.stat), createdAt: 'now' };
    await out.write('.batchpilot/job.json', JSON.stringify(record));
    const summary = { workflowId: 'job-1', status: 'completed', lines: { total: 1 } };
    await out.write('summary.json', JSON.stringify(summary));
    await out.write(
      'results.jsonl',
      JSON.stringify({ custom_id: 'a', response: { status_code: 200, body: {} } }) + '\n',
    );
    const done = await checkJobInStore(stores, where, job);
    expect(
      decideJob({ local: done, job, requestedId: undefined, force: false, newId: () => 'x' }),
    ).toMatchObject({
      kind: 'finished',
      id: 'job-1',
    });
    expect(await outputsOf(out)).toEqual([`${where.out}/results.jsonl`, `${where.out}/summary.json`]);
    const csv = await writeStoredResultsCsv(out);
    expect(csv).toEqual({ at: `${where.out}/results.csv`, rows: 1 });
    expect((await out.readBytes('results.csv'))?.toString()).toMatch(
      /^custom_id,status_code,content,usage\na,200,/,
    );
  });
});
