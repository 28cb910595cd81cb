// Three `batchpilot worker` processes with no disk in common: each has its own data root and its own
// scratch folder, and the job's data lives in a bucket (versitygw) named by BATCHPILOT_STORAGE. The
// input is put in the bucket and the job started with `batchpilot start s3://… --out s3://…`, with
// provider faults on. Mid-job one worker is SIGKILLed and a new one started, and the Temporal server
// (on PostgreSQL) is killed and restarted. The outputs, read back from the bucket, must hold every
// line exactly once, with one batch per shard and round, and the same answers as an undisturbed run
// of the same input through a local folder; afterwards no worker's folders hold job data beyond
// its bounded scratch. Needs the fleet's binaries: BATCHPILOT_FLEET=1 bash scripts/setup.sh.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobSummary } from '../../common/job-types.ts';
import { echoContent } from '../../emulator/answers.ts';
import type { FaultSettings } from '../../emulator/index.ts';
import { Bucket } from '../../scripts/fleet/bucket.ts';
import { startFleetEmulator, type FleetEmulator } from '../../scripts/fleet/emulator.ts';
import { startFleet, type Fleet } from '../../scripts/fleet/fleet.ts';
import { storageEnvironment } from '../../scripts/fleet/s3.ts';
import type { FleetWorker } from '../../scripts/fleet/workers.ts';
import { bundleWorkflows } from '../../worker/workflow-bundle.ts';
import { readJsonl, writeChatInput } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const LINES = 1_200;
const MAX_LINES = 10;
const SHARDS = LINES / MAX_LINES;
const TASK_QUEUE = 'fleet-s3';
const REFERENCE_QUEUE = 'fleet-local-reference';
const BUCKET = 'batchpilot-fleet';
const STORAGE = `s3://${BUCKET}/work`;
const INPUT_KEY = 'inputs/requests.jsonl';
const OUT_KEY = 'outputs/job-1';
/** Where a worker on object storage keeps the per-step copies it works on. */
const SCRATCH_VARIABLE = 'BATCHPILOT_SCRATCH_DIR';

// Every kind of provider weather at once, seeded: whether a line fails depends only on the seed,
// its custom_id and how often it was sent before, and whether a batch expires only on its content,
// so the undisturbed local run meets exactly the same faults on an emulator of its own.
const FAULTS: FaultSettings = {
  seed: 17,
  validatingMs: 150,
  perLineMs: 30,
  finalizingMs: 150,
  http: { rate: 0.05, statuses: [429, 500, 503], routes: ['create', 'retrieve', 'upload', 'content'] },
  lineRetryableRate: 0.04,
  linePermanentRate: 0.01,
  expireRate: 0.05,
  expireAfterFraction: 0.5,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `batchpilot <args>` as a user's shell configured with `env` runs it. */
function batchpilot(
  env: Record<string, string>,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin', 'batchpilot.ts'), ...args],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env },
        timeout: 600_000,
        maxBuffer: 16 << 20,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err.code as number) ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** The job's summary, waiting through a restart of the Temporal server. */
async function jobResult(fleet: Fleet, id: string): Promise<JobSummary> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const connection = await Connection.connect({ address: fleet.temporal.address }).catch(() => undefined);
    try {
      if (connection) {
        const client = new Client({ connection, namespace: fleet.temporal.namespace });
        return (await client.workflow.getHandle(id).result()) as JobSummary;
      }
    } catch (err) {
      if (err instanceof WorkflowFailedError || Date.now() > deadline) throw err;
    } finally {
      await connection?.close();
    }
    if (Date.now() > deadline) throw new Error(`no result for ${id} before the deadline`);
    await sleep(1000);
  }
}

/** Every file under `dir` with its size (an empty list when the folder does not exist). */
function filesUnder(dir: string): { file: string; size: number }[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => {
      const file = path.join(d.parentPath, d.name);
      return { file: path.relative(dir, file), size: fs.statSync(file).size };
    });
}

/** What the job answered for each custom_id: the content or the error, and the status code. */
function answersOf(outDir: string): Map<string, string> {
  const answers = new Map<string, string>();
  for (const r of readJsonl<{
    custom_id: string;
    response: { status_code: number; body: { choices: { message: { content: string } }[] } };
  }>(path.join(outDir, 'results.jsonl')))
    answers.set(r.custom_id, `${r.response.status_code} ${r.response.body.choices[0]!.message.content}`);
  for (const e of readJsonl<{ custom_id: string; attempts: number; error: { code: string } }>(
    path.join(outDir, 'errors.jsonl'),
  ))
    answers.set(e.custom_id, `error ${e.error.code} after ${e.attempts}`);
  return answers;
}

interface Reference {
  summary: JobSummary;
  outDir: string;
}

describe('three workers without a shared disk, job data in a bucket', () => {
  let fleet: Fleet;
  let bundleDir: string;
  let bucket: Bucket;
  let workflowBundle: string;
  let inputFile: string;
  let reference: Reference;
  /** Each worker's own folders, by worker name. */
  const folders = new Map<string, { data: string; scratch: string }>();

  async function startS3Worker(name: string): Promise<FleetWorker> {
    const own = path.join(fleet.root, 'machines', name);
    const dirs = { data: path.join(own, 'data'), scratch: path.join(own, 'scratch') };
    fs.mkdirSync(dirs.data, { recursive: true });
    fs.mkdirSync(dirs.scratch, { recursive: true });
    folders.set(name, dirs);
    return fleet.startWorker(name, {
      dataDir: dirs.data,
      extraEnv: {
        ...storageEnvironment(fleet.objectStore!, STORAGE),
        [SCRATCH_VARIABLE]: dirs.scratch,
      },
    });
  }

  beforeAll(async () => {
    bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-fleet-bundle-'));
    workflowBundle = path.join(bundleDir, 'workflows.js');
    fs.writeFileSync(workflowBundle, (await bundleWorkflows()).code);
    fleet = await startFleet({
      emulator: { faults: FAULTS },
      worker: { taskQueue: TASK_QUEUE, provider: 'emulator', workflowBundle, logLevel: 'warn' },
    });
    console.log(`fleet up: ${JSON.stringify(fleet.timings)} (seconds per step), logs in ${fleet.logDir}`);
    bucket = new Bucket(fleet.objectStore!, BUCKET);
    await bucket.create();
    inputFile = path.join(fleet.root, 'requests.jsonl');
    writeChatInput(fleet.root, 'requests.jsonl', LINES, ['qwen-plus']);
  });

  afterAll(async () => {
    bucket?.close();
    await fleet?.stop();
    if (bundleDir) fs.rmSync(bundleDir, { recursive: true, force: true });
  });

  it('runs the input undisturbed through a local folder first, as the reference', async () => {
    // Its own emulator with the same faults, so the reference meets them afresh, and one worker
    // on a queue of its own with today's local data root.
    const own = path.join(fleet.root, 'reference');
    let emulator: FleetEmulator | undefined;
    let worker: FleetWorker | undefined;
    try {
      emulator = await startFleetEmulator({ root: own, logDir: fleet.logDir, faults: FAULTS });
      const data = path.join(own, 'data');
      fs.mkdirSync(data, { recursive: true });
      fs.copyFileSync(inputFile, path.join(data, 'requests.jsonl'));
      worker = await fleet.startWorker('reference-worker', {
        taskQueue: REFERENCE_QUEUE,
        dataDir: data,
        baseUrl: emulator.url,
      });
      const res = await batchpilot(
        {
          TEMPORAL_ADDRESS: fleet.temporal.address,
          TEMPORAL_NAMESPACE: fleet.temporal.namespace,
          BATCHPILOT_TASK_QUEUE: REFERENCE_QUEUE,
        },
        [
          'start',
          'requests.jsonl',
          '--out',
          'out-reference',
          '--id',
          `fleet-reference-${Date.now()}`,
          '--max-lines',
          String(MAX_LINES),
          '--poll-interval',
          '1s',
          '--wait',
        ],
      );
      // Exit 1: the job is done and some lines failed for good (the faults make sure of it).
      expect(res.code, `${res.stdout}\n${res.stderr}\n${worker.tail()}`).toBe(1);
      const outDir = path.join(data, 'out-reference');
      const summary = JSON.parse(fs.readFileSync(path.join(outDir, 'summary.json'), 'utf8')) as JobSummary;
      expect(summary.status).toBe('completed');
      expect(summary.shards).toBe(SHARDS);
      await expectInvariant({ stats: () => emulator!.stats() }, outDir, LINES);
      expect((await emulator.stats()).batchesCreated).toBe(summary.batches);
      // The faults were felt: some lines failed for good and some took more than one round.
      expect(summary.lines.failed).toBeGreaterThan(0);
      expect(summary.rounds).toBeGreaterThan(1);
      reference = { summary, outDir };
      console.log(
        `reference: ${summary.batches} batches in ${summary.rounds} rounds, ${summary.lines.succeeded} succeeded, ${summary.lines.failed} failed`,
      );
    } finally {
      await worker?.stop();
      await emulator?.stop();
    }
  });

  it('survives a worker SIGKILLed and the Temporal server restarted, with every output in the bucket', async () => {
    expect(reference, 'the reference run').toBeDefined();
    for (const name of ['worker-1', 'worker-2', 'worker-3']) await startS3Worker(name);
    await bucket.putFile(INPUT_KEY, inputFile);
    const id = `fleet-s3-${Date.now()}`;
    const userShell = {
      TEMPORAL_ADDRESS: fleet.temporal.address,
      TEMPORAL_NAMESPACE: fleet.temporal.namespace,
      BATCHPILOT_TASK_QUEUE: TASK_QUEUE,
      ...storageEnvironment(fleet.objectStore!, STORAGE),
    };
    const started = await batchpilot(userShell, [
      'start',
      bucket.uri(INPUT_KEY),
      '--out',
      bucket.uri(OUT_KEY),
      '--id',
      id,
      '--max-lines',
      String(MAX_LINES),
      '--poll-interval',
      '1s',
      // A fifth of the shards at a time: the job is still early when it is disturbed.
      '--max-in-flight',
      '24',
    ]);
    expect(started.code, `${started.stdout}\n${started.stderr}`).toBe(0);

    const stats = () => fleet.emulator!.stats();
    const deadline = Date.now() + 240_000;
    while ((await stats()).batchesCreated < SHARDS / 4) {
      const dead = fleet.workers.find((w) => folders.has(w.name) && !w.alive());
      if (dead) throw new Error(`${dead.name} died:\n${dead.tail()}`);
      if (Date.now() > deadline) throw new Error('the job made fewer than a quarter of its batches in 4 min');
      await sleep(200);
    }
    const createdBefore = (await stats()).batchesCreated;
    expect(createdBefore).toBeLessThan(SHARDS);
    await fleet.workers.find((w) => w.name === 'worker-1')!.stop('SIGKILL');
    await fleet.restartTemporal('SIGKILL');
    await startS3Worker('worker-4');
    console.log(
      `worker-1 and the Temporal server SIGKILLed, the server restarted, worker-4 started, with ${createdBefore} of ${SHARDS} round-1 batches created`,
    );

    const summary = await jobResult(fleet, id);
    expect(summary.status).toBe('completed');
    expect(summary.shards).toBe(SHARDS);

    // The outputs, as a user copies them out of the bucket.
    const outDir = path.join(fleet.root, 'downloaded', 'out');
    const names = await bucket.download(OUT_KEY, outDir);
    expect(names.sort()).toEqual(
      expect.arrayContaining([
        'errors.jsonl',
        'manifest.json',
        'rejected.jsonl',
        'results.jsonl',
        'summary.json',
      ]),
    );
    await expectInvariant({ stats }, outDir, LINES);

    // One batch per shard and round: the same units as the undisturbed run, each sent once.
    expect(summary.batches).toBe(reference.summary.batches);
    expect(summary.rounds).toBe(reference.summary.rounds);
    const s = await stats();
    expect(s.batchesCreated).toBe(summary.batches);
    expect(Object.values(s.batchesByInputFile).every((n) => n === 1)).toBe(true);

    // Same answers as the undisturbed local run, and each answer the emulator's for its request.
    const got = answersOf(outDir);
    const want = answersOf(reference.outDir);
    expect(got.size).toBe(LINES);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
    const bodies = new Map(
      readJsonl<{ custom_id: string; body: Record<string, unknown> }>(inputFile).map((r) => [
        r.custom_id,
        r.body,
      ]),
    );
    for (const [cid, a] of got)
      if (!a.startsWith('error')) expect(a, cid).toBe(`200 ${echoContent(bodies.get(cid)!)}`);

    // Nothing of the job stays on the workers' machines: their data roots were never used, and a
    // worker's scratch holds only the step it is working on, so the live ones hold nothing now. The
    // SIGKILLed worker left whatever its steps had copied, less than the input alone. Besides the
    // steps, scratch keeps the mirror of the bucket's answer store (bounded by the store's own
    // bound): the live workers' holds only whole segments and their indexes.
    const inputBytes = fs.statSync(inputFile).size;
    const cache = path.join('answers-cache', path.sep);
    for (const [name, dirs] of folders) {
      expect(filesUnder(dirs.data), `${name}'s data root`).toEqual([]);
      const all = filesUnder(dirs.scratch);
      const scratch = all.filter((f) => !f.file.startsWith(cache));
      if (name !== 'worker-1')
        for (const f of all.filter((f) => f.file.startsWith(cache)))
          expect(f.file, `${name}'s answer cache`).toMatch(
            /^answers-cache\/(seg|idx)\/\d+-[0-9a-f]+-\d+-[0-9a-f]{16}$/,
          );
      if (name === 'worker-1') {
        const bytes = scratch.reduce((n, f) => n + f.size, 0);
        console.log(`the SIGKILLed worker left ${scratch.length} files, ${bytes} bytes in its scratch`);
        expect(bytes, `${name}'s scratch bytes`).toBeLessThan(inputBytes);
      } else expect(scratch, `${name}'s scratch`).toEqual([]);
    }

    // The S3 secret is in no workflow's history (the job's and its shards') nor in any worker's log.
    const secret = fleet.objectStore!.secretAccessKey;
    const connection = await Connection.connect({ address: fleet.temporal.address });
    try {
      const client = new Client({ connection, namespace: fleet.temporal.namespace });
      let histories = 0;
      for await (const wf of client.workflow.list()) {
        const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
        const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
        expect(bytes.includes(secret), `${wf.workflowId}'s history`).toBe(false);
        histories++;
      }
      expect(histories).toBeGreaterThan(SHARDS);
    } finally {
      await connection.close();
    }
    for (const w of fleet.workers)
      expect(fs.readFileSync(w.logFile, 'utf8').includes(secret), w.name).toBe(false);

    // The completed job emptied its work folder but for the record naming the job.
    const work = await bucket.list(`${OUT_KEY}/.batchpilot/`);
    expect(work.map((o) => o.key)).toEqual([`${OUT_KEY}/.batchpilot/job.json`]);
    const objects = await bucket.list('');
    console.log(
      `bucket after the job: ${objects.length} objects, ${objects.reduce((n, o) => n + o.size, 0)} bytes; under ${STORAGE}: ${objects.filter((o) => o.key.startsWith('work/')).length}`,
    );
  });
});
