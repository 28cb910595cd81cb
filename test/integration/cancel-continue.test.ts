// Cancellation mid-run keeps what finished; long histories continue-as-new (the dev server here
// suggests it at 60 events); recorded histories replay against the current workflow code.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { afterEach, describe, expect, it, inject } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import type { JobSummary } from '../../common/job-types.ts';
import { unitWorkflowId } from '../../common/keys.ts';
import {
  FAST_FAULTS,
  jobOptions,
  readJsonl,
  startHarness,
  writeChatInput,
  type Harness,
} from '../support/harness.ts';
import { firstAndLast, recordHistories, type Recorded } from '../support/histories.ts';
import { expectInvariant } from '../support/invariant.ts';

async function startedByContinueAsNew(h: Harness, workflowId: string): Promise<boolean> {
  const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
  const continued = !!history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
  if (!continued) console.warn(`${workflowId}: ${history.events?.length} events in its only run`);
  return continued;
}

describe('cancel and continue-as-new', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('cancels running batches, keeps finished lines and marks the rest cancelled', async () => {
    h = await startHarness({
      faults: { ...FAST_FAULTS, validatingMs: 100, perLineMs: 300, finalizingMs: 100 },
    });
    const input = writeChatInput(h.dataDir, 'cancel.jsonl', 60);
    const options = jobOptions({
      limits: { maxLines: 20, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
      maxInFlight: 2,
    });
    const handle = await h.client.workflow.start(JOB_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: `cancel-${Date.now()}`,
      args: [{ input, outDir: 'out-cancel', options }],
    });
    const deadline = Date.now() + 60_000;
    while ((await h.stats()).batchesCreated < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1000));
    await handle.cancel();
    const summary = (await handle.result()) as JobSummary;
    expect(summary.status).toBe('cancelled');
    const out = path.join(h.dataDir, 'out-cancel');
    await expectInvariant(h, out, 60);
    expect(summary.lines.succeeded).toBeGreaterThan(0);
    expect(summary.lines.failed).toBeGreaterThan(0);
    const errors = readJsonl<{ error: { code: string } }>(path.join(out, 'errors.jsonl'));
    for (const e of errors) expect(e.error.code).toBe('batch_cancelled');
    const stats = await h.stats();
    expect(stats.requests.cancel ?? 0).toBeGreaterThanOrEqual(1);
    // The third shard never started: no batch for it.
    expect(stats.batchesCreated).toBe(2);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).status).toBe('cancelled');
  });

  it('continues-as-new in shard and job workflows and replays their histories', async () => {
    h = await startHarness({
      faults: { ...FAST_FAULTS, validatingMs: 100, perLineMs: 300, finalizingMs: 100 },
    });
    const input = writeChatInput(h.dataDir, 'long.jsonl', 300);
    const jobId = `can-${Date.now()}`;
    const options = jobOptions({
      limits: { maxLines: 15, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
      maxInFlight: 4,
      pollIntervalMs: 100,
    });
    const summary = (await h.client.workflow.execute(JOB_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: jobId,
      args: [{ input, outDir: 'out-can', options }],
    })) as JobSummary;
    expect(summary.status).toBe('completed');
    expect(summary.lines.succeeded).toBe(300);
    await expectInvariant(h, path.join(h.dataDir, 'out-can'), 300);
    expect(await startedByContinueAsNew(h, jobId)).toBe(true);
    expect(await startedByContinueAsNew(h, unitWorkflowId(jobId, 1, 0))).toBe(true);

    // The first run of each chain (fresh start) and the last (started by continue-as-new).
    const runs = [
      ['job', jobId],
      ['shard', unitWorkflowId(jobId, 1, 0)],
    ] as const;
    const histories: Recorded[] = [];
    for (const [kind, workflowId] of runs) {
      const [first, last] = await firstAndLast(h.client, workflowId);
      histories.push({ file: `${kind}-first.json`, workflowId, history: first });
      histories.push({ file: `${kind}-last.json`, workflowId, history: last });
    }
    expect(
      histories[0]!.history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId,
    ).toBeFalsy();
    if (process.env.RECORD_HISTORIES === '1') recordHistories(histories);
    const bundle = { code: fs.readFileSync(inject('workflowBundlePath'), 'utf8') };
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, histories))
      expect(r.error, r.workflowId).toBeUndefined();
  });
});
