// The worker's plan step owns the rules of an output folder, whoever starts the job (start, a
// schedule, the Web UI): the same job id resumes, a finished job is reported without sending
// anything, another job is refused while the owner runs or until --force, a cancelled job resumed
// sends what the cancel stopped, and a folder the user must fix fails at once.
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import type { JobSummary } from '../../common/job-types.ts';
import {
  FAST_FAULTS,
  jobOptions,
  readJsonl,
  startHarness,
  writeChatInput,
  type Harness,
} from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';
import { sweepsOf } from '../support/watcher.ts';
import { watcherWorkflowId } from '../../common/batch-watch.ts';

const limits = { maxLines: 20, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

/** The failure under a failed job, as a user would read it. */
async function failureOf(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (err) {
    if (err instanceof WorkflowFailedError)
      return `${err.cause?.message} / ${(err.cause?.cause as Error | undefined)?.message ?? ''}`;
    throw err;
  }
  throw new Error('the job did not fail');
}

describe('an output folder belongs to one job', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ faults: { ...FAST_FAULTS, perLineMs: 30 } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('the same id resubmits nothing, finished or not; another id is refused until --force', async () => {
    const input = writeChatInput(h.dataDir, 'rerun.jsonl', 60);
    const options = { limits, keepWorkDir: true };
    const first = await h.runJob(input, 'out-rerun', options, 'rerun-job');
    const clean = await h.stats();
    expect(clean.batchesCreated).toBe(3);
    // A new job's first calls cannot have been made before: the worker looks up once per route (to
    // learn that the provider can be asked), not once per shard. The other file calls are the
    // deletions of each shard's input and output files.
    // The task queue's batch watcher lists too, to poll the batches (its sweeps, counted apart).
    const sweeps = await sweepsOf(h.client, watcherWorkflowId(h.taskQueue));
    const sweepCalls = sweeps.reduce((a, s) => a + s.result.listCalls, 0);
    expect((clean.requests.list ?? 0) - sweepCalls).toBe(1);
    expect(clean.requests.files).toBe(1 + 6);
    const again = await h.runJob(input, 'out-rerun', options, 'rerun-job');
    expect((await h.stats()).batchesCreated).toBe(3);
    expect(again).toEqual(first);
    await expectInvariant(h, path.join(h.dataDir, 'out-rerun'), 60);

    const refused = await failureOf(h.runJob(input, 'out-rerun', options, 'rerun-other-job'));
    expect(refused).toContain('holds job rerun-job (completed)');
    expect(refused).toContain('--force');
    expect((await h.stats()).batchesCreated).toBe(3);
    expect(readJsonl(path.join(h.dataDir, 'out-rerun', 'results.jsonl'))).toHaveLength(60);

    const forced = await h.client.workflow.execute(JOB_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: 'rerun-forced-job',
      args: [{ input, outDir: 'out-rerun', options: jobOptions(options), force: true }],
    });
    expect((forced as JobSummary).lines.succeeded).toBe(60);
    expect((await h.stats()).batchesCreated).toBe(6);
  });

  it('a finished job whose work files were cleaned is still reported, not bought again', async () => {
    const input = writeChatInput(h.dataDir, 'clean.jsonl', 30);
    const before = (await h.stats()).batchesCreated;
    const first = await h.runJob(input, 'out-clean', { limits }, 'clean-job');
    const bought = (await h.stats()).batchesCreated;
    expect(bought).toBe(before + 2);
    const again = await h.runJob(input, 'out-clean', { limits }, 'clean-job');
    expect(again).toEqual(first);
    expect((await h.stats()).batchesCreated).toBe(bought);
  });

  it('the same id with a changed input is refused with what changed', async () => {
    const input = writeChatInput(h.dataDir, 'changing.jsonl', 20);
    await h.runJob(input, 'out-changing', { limits }, 'changing-job');
    writeChatInput(h.dataDir, 'changing.jsonl', 25);
    const refused = await failureOf(h.runJob(input, 'out-changing', { limits }, 'changing-job'));
    expect(refused).toContain('changing.jsonl changed since the job started');
  });

  it('a second job on a folder whose job runs fails at once and leaves the first intact', async () => {
    const input = writeChatInput(h.dataDir, 'busy.jsonl', 60);
    // The emulator's count includes earlier tests' batches: wait for one of this job's own.
    const before = (await h.stats()).batchesCreated;
    const first = h.runJob(input, 'out-busy', { limits, maxInFlight: 1 }, 'busy-owner');
    while ((await h.stats()).batchesCreated === before) await new Promise((r) => setTimeout(r, 50));
    const refused = await failureOf(h.runJob(input, 'out-busy', { limits }, 'busy-intruder'));
    expect(refused).toContain('is being written by job busy-owner, which is running');
    expect((await first).lines.succeeded).toBe(60);
    await expectInvariant(h, path.join(h.dataDir, 'out-busy'), 60);
  });

  it('a cancelled job started again with its id sends the cancelled lines and completes', async () => {
    const input = writeChatInput(h.dataDir, 'resume.jsonl', 60);
    const options = jobOptions({ limits, maxInFlight: 3, maxAttempts: 1 });
    const start = () =>
      h.client.workflow.start(JOB_WORKFLOW, {
        taskQueue: h.taskQueue,
        workflowId: 'resume-job',
        args: [{ input, outDir: 'out-resume', options }],
      });
    // Slow batches while the cancel comes, so that it meets them running.
    const faults = (settings: object) =>
      fetch(h.emulator.url.replace(/\/v1$/, '/_emulator/faults'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(settings),
      });
    await faults({ ...FAST_FAULTS, perLineMs: 300 });
    const created = (await h.stats()).batchesCreated;
    const handle = await start();
    while ((await h.stats()).batchesCreated < created + 3) await new Promise((r) => setTimeout(r, 50));
    await handle.cancel();
    const cancelled = (await handle.result()) as JobSummary;
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.lines.failed).toBeGreaterThan(0);
    await faults({ ...FAST_FAULTS, perLineMs: 30 });
    // maxAttempts 1: the lines the cancel stopped go again all the same, in a round of their own.
    const resumed = (await (await start()).result()) as JobSummary;
    expect(resumed).toMatchObject({ status: 'completed', rounds: 2, lines: { succeeded: 60, failed: 0 } });
    const out = path.join(h.dataDir, 'out-resume');
    await expectInvariant(h, out, 60);
    expect(readJsonl(path.join(out, 'errors.jsonl'))).toEqual([]);
    // No batch was bought twice for one file: the round-1 batches were collected, not bought again.
    const stats = await h.stats();
    expect(Object.values(stats.batchesByInputFile).every((n) => n === 1)).toBe(true);
    expect(stats.batchesCreated - created).toBe(3 + Math.ceil(cancelled.lines.failed / limits.maxLines));
  });

  it('an output path that is a file fails the job at once with the fix', async () => {
    const input = writeChatInput(h.dataDir, 'onfile.jsonl', 5);
    fs.writeFileSync(path.join(h.dataDir, 'a-file'), 'x');
    // Not retried: with a retryable error the job would back off for half an hour instead.
    const refused = await failureOf(h.runJob(input, 'a-file/out', { limits }, 'onfile-job'));
    expect(refused).toMatch(/cannot create the output folder a-file\/out: (EEXIST|ENOTDIR)/);
    expect(refused).toContain('a file stands where a folder is needed');
  });
});
