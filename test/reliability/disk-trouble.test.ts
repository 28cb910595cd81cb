// Disk trouble: the output folder becomes unwritable while the job runs, so the merge finds it so
// at its first write into the folder (after it has finalized every shard in the work dir, which
// stays writable). The job must fail with a clear message, leave nothing that looks complete (no summary.json; no results.jsonl without the rest), and once the disk is fixed,
// running the job again with the same input and output folder (the same workflow id, the first
// run being closed) must finish it without resubmitting anything: the emulator's batchesCreated
// stays where it was.
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultSettings } from '../../emulator/index.ts';
import {
  jobOptions,
  jobResult,
  log,
  makeUnwritable,
  startRig,
  waitFor,
  writeInput,
  type InputSpec,
  type Rig,
  type Unwritable,
} from './rig.ts';
import { expectSurvived, runBaseline } from './survival.ts';

const FAULTS: FaultSettings = {
  seed: 61,
  validatingMs: 100,
  perLineMs: 2,
  finalizingMs: 100,
  lineRetryableRate: 0.05,
  linePermanentRate: 0.02,
};
const SPEC: InputSpec = { lines: 500, models: ['qwen-plus', 'qwen-turbo'], badEvery: 120 };
const OPTIONS = jobOptions({
  limits: { maxLines: 25, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
  maxInFlight: 10,
  pollIntervalMs: 300,
});

/** The whole chain of causes of a failure, as one string. */
function messages(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e)
    parts.push(e.message ?? '(no message)');
  return parts.join(' <- ');
}

describe('output folder unwritable mid-merge', () => {
  let rig: Rig;
  let lock: Unwritable | undefined;
  beforeAll(async () => {
    rig = await startRig({ name: 'disk', faults: FAULTS });
  });
  afterAll(async () => {
    lock?.restore();
    await rig?.close();
  });

  it('fails clearly, leaves nothing that looks complete, and finishes on a re-run without resubmitting', async () => {
    const t0 = Date.now();
    const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const { input, total } = writeInput(rig.dataDir, 'in.jsonl', SPEC);
    const out = path.join(rig.dataDir, 'out');
    const workDir = path.join(out, '.batchpilot');
    const worker = rig.spawnWorker('worker-1');
    const jobId = `disk-${Date.now()}`;
    const handle = await rig.startJob(input, 'out', OPTIONS, jobId);

    // The folder is locked as soon as the plan is written: nothing is written into the output
    // folder itself before the merge, so the merge meets the lock at its first write, with no
    // race against a watcher on a loaded machine.
    const manifest = path.join(workDir, 'round-1', 'manifest.json');
    await waitFor('the plan', () => fs.existsSync(manifest), 120_000, 20);
    lock = makeUnwritable(out);
    const how = lock.how;
    const finalDir = path.join(workDir, 'final');
    const finalized = () =>
      fs.existsSync(finalDir) ? fs.readdirSync(finalDir).filter((f) => f.endsWith('.jsonl')).length : 0;
    log('disk', `${at()}: ${out} made unwritable by ${how} once the plan was written`);

    // A worker that dies on the broken disk (instead of failing the activity) would leave the job
    // waiting for a worker forever: that is a failure of this test, said at once.
    const failure = await Promise.race([
      jobResult(handle).then(
        () => undefined,
        (err: unknown) => err,
      ),
      worker.exited.then((e) => {
        throw new Error(`the worker died on the broken disk (${JSON.stringify(e)}): ${worker.output()}`);
      }),
    ]);
    expect(failure, 'the job must fail').toBeInstanceOf(WorkflowFailedError);
    const message = messages(failure);
    log('disk', `${at()}: the job failed: ${message}`);
    expect(message).toMatch(/cannot write the outputs in .*out/);
    expect(message).toMatch(/run the job again/);

    // The merge broke in its second step: every shard finalized in the (writable) work dir, then
    // the first write into the output folder failed.
    const shards = (
      JSON.parse(fs.readFileSync(path.join(workDir, 'round-1', 'manifest.json'), 'utf8')) as {
        shards: unknown[];
      }
    ).shards.length;
    expect(finalized()).toBe(shards);

    // Nothing half-written looks complete.
    const left = fs.readdirSync(out);
    log('disk', `left in the output folder: ${JSON.stringify(left)}, ${shards} shards finalized`);
    expect(left).not.toContain('summary.json');
    expect(left).not.toContain('results.jsonl');
    expect(left.filter((f) => f.includes('.tmp-'))).toEqual([]);

    const before = await rig.stats();
    lock.restore();
    lock = undefined;

    // Fixed disk: the same job again (same id, the first run closed).
    const t1 = Date.now();
    const again = await rig.startJob(input, 'out', OPTIONS, jobId);
    const summary = await jobResult(again);
    const rerunSeconds = (Date.now() - t1) / 1000;
    const after = await rig.stats();
    log(
      'disk',
      `re-run finished in ${rerunSeconds} s; batches ${before.batchesCreated} -> ${after.batchesCreated}, ` +
        `uploads ${before.requests.upload ?? 0} -> ${after.requests.upload ?? 0}`,
    );
    expect(summary.status).toBe('completed');
    expect(after.batchesCreated, 'no batch resubmitted').toBe(before.batchesCreated);

    const baseline = await runBaseline(rig, SPEC, FAULTS, OPTIONS);
    const figures = await expectSurvived(rig, 'out', total, baseline, { rerun: true });
    expect(summary.rounds).toBe(baseline.summary.rounds);
    log(
      'disk',
      `FIGURES lock=${how} batches=${figures.batches} expected=${baseline.stats.batchesCreated} ` +
        `rerunSeconds=${rerunSeconds} summaryBatchesOfRerun=${summary.batches} lines=${JSON.stringify(summary.lines)}`,
    );
  });
});
