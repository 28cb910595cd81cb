// docker-compose.yml's topology as processes: PostgreSQL, its schema, the Temporal server on it, the
// namespace and search attributes, the emulator as the provider, two `batchpilot worker` processes,
// and jobs started with `batchpilot start` as a user would. Then the same with the Temporal server
// restarted and a worker SIGKILLed mid-job. Needs the fleet's binaries: BATCHPILOT_FLEET=1 bash
// scripts/setup.sh.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TASK_QUEUE, SEARCH_ATTRIBUTES } from '../../common/definitions.ts';
import type { JobSummary } from '../../common/job-types.ts';
import { FLEET_DIR, fleetBinaries } from '../../scripts/fleet/binaries.ts';
import { startFleet, type Fleet } from '../../scripts/fleet/fleet.ts';
import { bundleWorkflows } from '../../worker/workflow-bundle.ts';
import { writeChatInput } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';
import { s3Request } from './s3-request.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const LINES = 200;
const MAX_LINES = 10;
const SHARDS = LINES / MAX_LINES;

/** `batchpilot <args>` against the fleet, configured as a user's shell would be. */
function batchpilot(fleet: Fleet, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin', 'batchpilot.ts'), ...args],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          TEMPORAL_ADDRESS: fleet.temporal.address,
          TEMPORAL_NAMESPACE: fleet.temporal.namespace,
          BATCHPILOT_TASK_QUEUE: DEFAULT_TASK_QUEUE,
          LOG_LEVEL: 'warn',
        },
        timeout: 600_000,
        maxBuffer: 16 << 20,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err.code as number) ?? 1) : 0, stdout, stderr }),
    ),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** The worker's `batchpilot_batches_created` counter, summed over its label sets. */
async function batchesCreatedBy(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return [...text.matchAll(/^batchpilot_batches_created\S*\s+(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

function readSummary(fleet: Fleet, out: string): JobSummary {
  return JSON.parse(fs.readFileSync(path.join(fleet.dataDir, out, 'summary.json'), 'utf8')) as JobSummary;
}

describe('the docker-compose topology as processes (PostgreSQL-backed Temporal, two workers)', () => {
  let fleet: Fleet | undefined;
  let bundleDir: string | undefined;
  let batchesBefore = 0;

  beforeAll(async () => {
    bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-fleet-bundle-'));
    const workflowBundle = path.join(bundleDir, 'workflows.js');
    fs.writeFileSync(workflowBundle, (await bundleWorkflows()).code);
    fleet = await startFleet({
      workers: 2,
      // Each batch takes about a second, so a job is still running when the test disturbs it.
      emulator: { faults: { seed: 5, validatingMs: 200, perLineMs: 40, finalizingMs: 200 } },
      worker: { taskQueue: DEFAULT_TASK_QUEUE, provider: 'emulator', workflowBundle, logLevel: 'warn' },
    });
    console.log(`fleet up: ${JSON.stringify(fleet.timings)} (seconds per step), logs in ${fleet.logDir}`);
  });

  afterAll(async () => {
    await fleet?.stop();
    if (bundleDir) fs.rmSync(bundleDir, { recursive: true, force: true });
  });

  it('has the namespace and every search attribute of batchpilot on the real server', async () => {
    const connection = await Connection.connect({ address: fleet!.temporal.address });
    try {
      const res = await connection.operatorService.listSearchAttributes({
        namespace: fleet!.temporal.namespace,
      });
      for (const a of Object.values(SEARCH_ATTRIBUTES))
        expect(Object.keys(res.customAttributes), a.name).toContain(a.name);
    } finally {
      await connection.close();
    }
  });

  it('makes the namespace step fail loudly when an attribute cannot be registered', async () => {
    const bin = fleetBinaries();
    const res = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        'sh',
        [path.join(FLEET_DIR, 'create-namespace.sh')],
        {
          env: {
            PATH: [bin.temporalServerDir, path.dirname(bin.temporalCli), process.env.PATH].join(
              path.delimiter,
            ),
            HOME: process.env.HOME,
            TEMPORAL_ADDRESS: fleet!.temporal.address,
            TEMPORAL_NAMESPACE: fleet!.temporal.namespace,
            BATCHPILOT_SEARCH_ATTRIBUTES: 'BatchpilotStatus=Keyword BatchpilotBogus=NoSuchType',
            SETUP_ATTEMPTS: '2',
            SETUP_SLEEP: '0',
          },
        },
        (err, _stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr }),
      ),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/gave up on search attributes .*BatchpilotBogus=NoSuchType after 2 attempts/);
  });

  it('serves S3 with the fleet credentials on a folder, and refuses other credentials', async () => {
    const s3 = fleet!.objectStore!;
    expect((await s3Request(s3, 'PUT', '/batchpilot')).status).toBe(200);
    const put = await s3Request(s3, 'PUT', '/batchpilot/jobs/hello.txt', 'hello fleet');
    expect(put.status, await put.text()).toBe(200);
    const got = await s3Request(s3, 'GET', '/batchpilot/jobs/hello.txt');
    expect(await got.text()).toBe('hello fleet');
    // The posix backend: a bucket is a folder, an object a file.
    expect(fs.readFileSync(path.join(s3.root, 'batchpilot', 'jobs', 'hello.txt'), 'utf8')).toBe(
      'hello fleet',
    );
    const wrong = await s3Request(
      { ...s3, secretAccessKey: 'not-the-secret' },
      'GET',
      '/batchpilot/jobs/hello.txt',
    );
    expect(wrong.status).toBe(403);
    await wrong.body?.cancel();
  });

  it('runs a 20-shard job through `batchpilot start --wait`: every line in exactly one output, one batch per shard', async () => {
    const input = writeChatInput(fleet!.dataDir, 'in-1.jsonl', LINES, ['qwen-plus', 'qwen-turbo']);
    const id = `fleet-job-1-${Date.now()}`;
    const res = await batchpilot(fleet!, [
      'start',
      input,
      '--out',
      'out-1',
      '--id',
      id,
      '--max-lines',
      String(MAX_LINES),
      '--poll-interval',
      '1s',
      '--wait',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const summary = readSummary(fleet!, 'out-1');
    expect(summary.status).toBe('completed');
    expect(summary.shards).toBe(SHARDS);
    expect(summary.batches).toBe(SHARDS);
    expect(summary.lines.succeeded).toBe(LINES);
    await expectInvariant(
      { stats: () => fleet!.emulator!.stats() },
      path.join(fleet!.dataDir, 'out-1'),
      LINES,
    );
    batchesBefore = (await fleet!.emulator!.stats()).batchesCreated;
    expect(batchesBefore).toBe(SHARDS);
    // The batches were created by the two worker processes, which report them on their metrics address.
    const perWorker: Record<string, number> = {};
    for (const w of fleet!.workers) {
      expect(w.alive(), `${w.name}:\n${w.tail()}`).toBe(true);
      perWorker[w.name] = await batchesCreatedBy(w.metricsUrl);
    }
    console.log(`batches created per worker: ${JSON.stringify(perWorker)}`);
    expect(Object.values(perWorker).reduce((a, b) => a + b, 0)).toBe(SHARDS);
    // The job's search attributes were written to PostgreSQL's visibility store and can be queried.
    const connection = await Connection.connect({ address: fleet!.temporal.address });
    const client = new Client({ connection, namespace: fleet!.temporal.namespace });
    try {
      const query = `WorkflowId = "${id}" AND ${SEARCH_ATTRIBUTES.status.name} = "completed" AND ${SEARCH_ATTRIBUTES.linesTotal.name} = ${LINES}`;
      await until(
        'the job in visibility by its search attributes',
        async () => {
          for await (const wf of client.workflow.list({ query })) return wf.workflowId === id;
          return false;
        },
        30_000,
      );
    } finally {
      await connection.close();
    }
  });

  it('finishes a job with the Temporal server crashed (SIGKILL) and restarted, and a worker SIGKILLed, mid-job', async () => {
    // Other questions than the first job's: answers it already bought would be reused, not batched.
    const input = writeChatInput(fleet!.dataDir, 'in-2.jsonl', LINES, ['qwen-plus'], 'second question');
    const id = `fleet-job-2-${Date.now()}`;
    const started = await batchpilot(fleet!, [
      'start',
      input,
      '--out',
      'out-2',
      '--id',
      id,
      '--max-lines',
      String(MAX_LINES),
      '--poll-interval',
      '1s',
      // Four batches at a time: the job runs long enough to be disturbed halfway.
      '--max-in-flight',
      '4',
    ]);
    expect(started.code, started.stderr).toBe(0);
    const stats = () => fleet!.emulator!.stats();
    await until(
      'a few batches of the second job',
      async () => (await stats()).batchesCreated >= batchesBefore + 3,
    );
    // Disturbed halfway: some of its batches exist, not all.
    const createdBefore = (await stats()).batchesCreated - batchesBefore;
    expect(createdBefore).toBeLessThan(SHARDS);
    const victim = fleet!.workers[0]!;
    await victim.stop('SIGKILL');
    await fleet!.restartTemporal('SIGKILL');
    await fleet!.startWorker('worker-3');
    console.log(
      `worker-1 and the Temporal server SIGKILLed, the server restarted, with ${createdBefore} of ${SHARDS} batches created`,
    );

    const connection = await Connection.connect({ address: fleet!.temporal.address });
    const client = new Client({ connection, namespace: fleet!.temporal.namespace });
    let summary: JobSummary | undefined;
    try {
      const deadline = Date.now() + 600_000;
      while (!summary) {
        try {
          summary = (await client.workflow.getHandle(id).result()) as JobSummary;
        } catch (err) {
          if (err instanceof WorkflowFailedError || Date.now() > deadline) throw err;
          await sleep(1000);
        }
      }
    } finally {
      await connection.close();
    }
    expect(summary.status).toBe('completed');
    expect(summary.shards).toBe(SHARDS);
    expect(summary.batches).toBe(SHARDS);
    await expectInvariant({ stats }, path.join(fleet!.dataDir, 'out-2'), LINES);
    expect((await stats()).batchesCreated - batchesBefore).toBe(SHARDS);
  });
});
