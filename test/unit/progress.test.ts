import { describe, expect, it } from 'vitest';
import type { JobProgress } from '../../common/job-types.ts';
import { answeredInFlight, doneFraction, eta, renderProgress } from '../../client/progress-view.ts';
import { progressTable } from '../../workflows/progress.ts';

const base: JobProgress = {
  workflowId: 'job-1',
  phase: 'running',
  round: 1,
  input: 'in.jsonl',
  outDir: 'out',
  models: ['qwen-plus', 'qwen-flash'],
  lines: { total: 101, valid: 100, rejected: 1, succeeded: 40, failed: 0, pendingRetry: 0 },
  shards: [
    {
      round: 1,
      index: 0,
      status: 'done',
      batchId: 'b0',
      lines: 40,
      completed: 40,
      succeeded: 40,
      failed: 0,
      retry: 0,
    },
    {
      round: 1,
      index: 1,
      status: 'in_progress',
      batchId: 'b1',
      lines: 40,
      completed: 10,
      succeeded: 0,
      failed: 0,
      retry: 0,
    },
    {
      round: 1,
      index: 2,
      status: 'pending',
      batchId: null,
      lines: 20,
      completed: 0,
      succeeded: 0,
      failed: 0,
      retry: 0,
    },
  ],
  batchesCreated: 2,
  startedAt: new Date(0).toISOString(),
};

describe('progress', () => {
  it('counts settled lines only, and lines answered inside running batches apart', () => {
    expect(doneFraction(base)).toBeCloseTo(0.4);
    expect(answeredInFlight(base)).toBe(10);
    expect(eta(base, 60_000)).toBeCloseTo(90_000);
    expect(eta({ ...base, lines: { ...base.lines, succeeded: 0 }, shards: [] }, 60_000)).toBeUndefined();
  });
  it('gives no ETA while it would mean nothing', () => {
    // Too early, too little done, or not running.
    expect(eta(base, 10_000)).toBeUndefined();
    expect(eta({ ...base, lines: { ...base.lines, succeeded: 1 } }, 60_000)).toBeUndefined();
    expect(eta({ ...base, phase: 'cancelling' }, 60_000)).toBeUndefined();
  });
  it('renders a bar with counts, shard states and an ETA', () => {
    const text = renderProgress(base, 60_000);
    expect(text).toContain(' 40.0%');
    expect(text).toContain('40 ok, 0 failed, 1 rejected of 101 lines');
    expect(text).toContain('1 done, 1 in_progress, 1 pending');
    expect(text).toContain('10 answered in running batches');
    expect(text).toContain('ETA 1m 30s');
  });
  it('never shows a full bar for a job with nothing to send', () => {
    const none: JobProgress = {
      ...base,
      phase: 'done',
      lines: { total: 3, valid: 0, rejected: 3, succeeded: 0, failed: 0, pendingRetry: 0 },
      shards: [],
    };
    const text = renderProgress(none, 60_000);
    expect(text).toContain('nothing to send: 0 ok, 0 failed, 3 rejected of 3 lines');
    expect(text).not.toContain('100.0%');
  });
  it('shows the job in the Web UI as a table, running shards first', () => {
    const table = progressTable(base).split('\n');
    expect(table[1]).toContain('models: qwen-plus, qwen-flash');
    const rows = table.filter((l) => /^\| \d/.test(l));
    expect(rows[0]).toContain('| 1 | 1 | in_progress | b1 |');
    expect(rows).toHaveLength(3);
  });
});
