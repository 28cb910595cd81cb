// A rolling upgrade as the runbook describes it: a job starts on worker process A (build v1), A is
// stopped the way a deploy stops it (SIGTERM) while batches are out, worker B (build v2) starts, and
// the job completes on B with every line in exactly one output and no batch bought twice. The job's
// history shows workflow tasks completed by both builds, so the job really crossed the upgrade.
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import type { JobSummary } from '../../common/job-types.ts';
import { stopProcess } from '../../worker/dev-server.ts';
import { FAST_FAULTS, jobOptions, startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const LINES = 120;

describe('worker upgrade mid-job', () => {
  let h: Harness;
  let worker: ChildProcess | undefined;
  beforeAll(async () => {
    h = await startHarness({
      faults: { ...FAST_FAULTS, validatingMs: 300, perLineMs: 40, finalizingMs: 300 },
      inProcessWorker: false,
    });
  });
  afterAll(async () => {
    if (worker) await stopProcess(worker);
    await h.close();
  });

  it(
    'a job started on build v1 completes on build v2, each line once, each batch bought once',
    {
      timeout: 300_000,
    },
    async () => {
      const input = writeChatInput(h.dataDir, 'upgrade.jsonl', LINES);
      const options = jobOptions({
        limits: { maxLines: 30, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
        maxInFlight: 2,
        keepWorkDir: false,
      });
      worker = h.spawnWorker({ BATCHPILOT_BUILD_ID: 'upgrade-test-v1' });
      const handle = await h.client.workflow.start(JOB_WORKFLOW, {
        taskQueue: h.taskQueue,
        workflowId: `upgrade-${Date.now()}`,
        args: [{ input, outDir: 'out-upgrade', options }],
      });
      await waitFor('a batch bought by v1', async () => (await h.stats()).batchesCreated >= 1);
      // The deploy: the old build is told to stop and is gone before the new one starts.
      worker.kill('SIGTERM');
      const { code } = await new Promise<{ code: number | null }>((resolve) =>
        worker!.once('exit', (c) => resolve({ code: c })),
      );
      expect(code).toBe(0);
      const boughtByV1 = (await h.stats()).batchesCreated;
      worker = h.spawnWorker({ BATCHPILOT_BUILD_ID: 'upgrade-test-v2' });

      const summary = (await handle.result()) as JobSummary;
      expect(summary.status).toBe('completed');
      expect(summary.lines.succeeded).toBe(LINES);
      const stats = await h.stats();
      // Four shards of 30 lines: four batches in all, whichever build bought them.
      expect(stats.batchesCreated).toBe(4);
      expect(boughtByV1).toBeLessThan(4);
      await expectInvariant(h, path.join(h.dataDir, 'out-upgrade'), LINES);

      // Every run of the job (it continues as new), followed from the first, not only the last one.
      const builds = new Set<string>();
      let runId: string | undefined = handle.firstExecutionRunId;
      while (runId) {
        const history = await h.client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
        runId = undefined;
        for (const e of history.events ?? []) {
          const a = e.workflowTaskCompletedEventAttributes;
          const id = a?.deploymentVersion?.buildId ?? a?.workerVersion?.buildId;
          if (id) builds.add(id);
          runId = e.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? runId;
        }
      }
      expect([...builds].sort()).toEqual(['upgrade-test-v1', 'upgrade-test-v2']);
    },
  );
});
