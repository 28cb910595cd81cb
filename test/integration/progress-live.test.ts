// Progress tells the truth while a batch runs: the job's progress moves with the provider's own
// count of answered lines, not only when a batch changes status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_WORKFLOW, PROGRESS_QUERY } from '../../common/definitions.ts';
import type { JobProgress } from '../../common/job-types.ts';
import { FAST_FAULTS, jobOptions, startHarness, writeChatInput, type Harness } from '../support/harness.ts';

describe('live progress', () => {
  let h: Harness;
  beforeAll(async () => {
    // One 200-line batch answered at 40 ms a line: about 8 s in progress.
    h = await startHarness({ faults: { ...FAST_FAULTS, perLineMs: 40 } });
  });
  afterAll(async () => {
    await h.close();
  });

  it("shows a running batch's answered lines before the batch ends", async () => {
    const input = writeChatInput(h.dataDir, 'live.jsonl', 200);
    const handle = await h.client.workflow.start(JOB_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: `live-${Date.now()}`,
      args: [{ input, outDir: 'out-live', options: jobOptions({ pollIntervalMs: 200 }) }],
    });
    const seen = new Set<number>();
    let ended = false;
    const result = handle.result().finally(() => (ended = true));
    while (!ended) {
      const p = await handle.query<JobProgress>(PROGRESS_QUERY).catch(() => undefined);
      const unit = p?.shards[0];
      if (unit && unit.status === 'in_progress') seen.add(unit.completed);
      await new Promise((r) => setTimeout(r, 100));
    }
    await result;
    const partial = [...seen].filter((n) => n > 0 && n < 200);
    // More than the one count a status change carries: the count moved while the batch ran.
    expect(partial.length, `counts seen while in progress: ${[...seen].join(', ')}`).toBeGreaterThanOrEqual(
      2,
    );
  });
});
