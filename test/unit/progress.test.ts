import { describe, expect, it } from 'vitest';
import type { JobProgress } from '../../common/job-types.ts';
import { doneFraction, eta, renderProgress } from '../../client/progress-view.ts';
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
  it('counts finished lines and lines done inside running batches', () => {
    expect(doneFraction(base)).toBeCloseTo(0.5);
    expect(eta(base, 60_000)).toBeCloseTo(60_000);
    expect(eta({ ...base, lines: { ...base.lines, succeeded: 0 }, shards: [] }, 60_000)).toBeUndefined();
  });
  it('renders a bar with counts, shard states and an ETA', () => {
    const text = renderProgress(base, 60_000);
    expect(text).toContain(' 50.0%');
    expect(text).toContain('40 ok, 0 failed, 1 rejected of 101 lines');
    expect(text).toContain('1 done, 1 in_progress, 1 pending');
    expect(text).toContain('ETA 1m 00s');
  });
  it('shows the job in the Web UI as a table, running shards first', () => {
    const table = progressTable(base).split('\n');
    expect(table[1]).toContain('models: qwen-plus, qwen-flash');
    const rows = table.filter((l) => /^\| \d/.test(l));
    expect(rows[0]).toContain('| 1 | 1 | in_progress | b1 |');
    expect(rows).toHaveLength(3);
  });
});
