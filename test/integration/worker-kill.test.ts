// A worker SIGKILLed at the worst moments (during upload, right after create, while polling, during
// merge) and restarted: the job completes, no batch is created twice, and the outputs hold the same
// custom_ids with the same answers as an undisturbed run.
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import type { JobSummary } from '../../common/job-types.ts';
import { stopProcess } from '../../worker/dev-server.ts';
import {
  FAST_FAULTS,
  jobOptions,
  pollsIn,
  readJsonl,
  startHarness,
  writeChatInput,
  type Harness,
} from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

type Result = { custom_id: string; response: { body: { choices: { message: { content: string } }[] } } };

async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function answers(out: string): Map<string, string> {
  return new Map(
    readJsonl<Result>(path.join(out, 'results.jsonl')).map((r) => [
      r.custom_id,
      r.response.body.choices[0]!.message.content,
    ]),
  );
}

describe('worker killed and restarted', () => {
  let h: Harness;
  let worker: ChildProcess | undefined;
  beforeAll(async () => {
    h = await startHarness({
      faults: { ...FAST_FAULTS, validatingMs: 300, perLineMs: 60, finalizingMs: 300 },
      inProcessWorker: false,
    });
  });
  afterAll(async () => {
    if (worker) await stopProcess(worker);
    await h.close();
  });

  it('completes with exactly one batch per shard and the same answers', { timeout: 600_000 }, async () => {
    const input = writeChatInput(h.dataDir, 'kill.jsonl', 180, ['qwen-plus', 'qwen-turbo']);
    const options = jobOptions({
      limits: { maxLines: 30, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
      maxInFlight: 2,
      keepWorkDir: false,
    });
    const t0 = Date.now();
    const kill = async () => {
      console.log(`kill at ${Date.now() - t0} ms`, await h.stats());
      worker!.kill('SIGKILL');
      await new Promise((r) => worker!.once('exit', r));
      worker = h.spawnWorker();
    };
    worker = h.spawnWorker();
    const handle = await h.client.workflow.start(JOB_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: `kill-${Date.now()}`,
      args: [{ input, outDir: 'out-kill', options }],
    });
    await waitFor('first upload', async () => ((await h.stats()).requests.upload ?? 0) >= 1);
    await kill();
    await waitFor('a batch created', async () => (await h.stats()).batchesCreated >= 2);
    await kill();
    const polls = async () => pollsIn(await h.stats());
    const before = await polls();
    await waitFor('polling', async () => (await polls()) >= before + 3);
    await kill();
    // The merge can be quicker than this loop: a summary means the window has passed.
    const out = path.join(h.dataDir, 'out-kill');
    await waitFor(
      'merge',
      () =>
        fs.existsSync(path.join(out, '.batchpilot', 'final')) ||
        fs.existsSync(path.join(out, 'summary.json')),
      300_000,
    );
    await kill();
    const summary = (await handle.result()) as JobSummary;
    console.log(`done at ${Date.now() - t0} ms`);
    expect(summary.status).toBe('completed');
    expect(summary.lines.succeeded).toBe(180);
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(6);
    await expectInvariant(h, path.join(h.dataDir, 'out-kill'), 180);

    // The undisturbed run, same input, same emulator.
    await stopProcess(worker);
    worker = undefined;
    await h.startWorker();
    const calm = await h.runJob(input, 'out-calm', options);
    expect(calm.lines).toEqual(summary.lines);
    expect(answers(path.join(h.dataDir, 'out-kill'))).toEqual(answers(path.join(h.dataDir, 'out-calm')));
  });
});
