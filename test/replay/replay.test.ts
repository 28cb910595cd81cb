// Replays recorded histories of the job and shard workflows (test/histories/, recorded with
// RECORD_HISTORIES=1 by the continue-as-new and never-idle integration tests) against the current workflow code:
// a change that would break running workflows fails here. Change a workflow incompatibly only
// behind `patched()`, then record again.
import fs from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workerTracing } from '../../worker/tracing.ts';
import { WORKFLOWS_PATH, WORKFLOW_TRACING_INTERCEPTORS } from '../../worker/workflow-bundle.ts';

const dir = path.join(import.meta.dirname, '..', 'histories');
const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as {
  file: string;
  workflowId: string;
}[];

describe('replay of recorded histories', () => {
  it('has the first and the continued-as-new run of both workflow types', () => {
    expect(index.map((e) => e.file).sort()).toEqual([
      'job-first.json',
      'job-last.json',
      // A job whose shards outlive a run: its first run, and one that continued as new with
      // shards running.
      'job-nonstop-first.json',
      'job-nonstop-handover.json',
      'shard-first.json',
      'shard-last.json',
    ]);
    for (const { file } of index) {
      const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')));
      const continued =
        !!history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
      expect(continued, file).toBe(!file.endsWith('-first.json'));
    }
  });
  // As workers run them: a worker that traces carries the tracing interceptors, one that does not
  // carries none, and a worker restarted with tracing switched either way replays the same history.
  for (const traced of [false, true])
    it(`replays each without a nondeterminism error (tracing interceptors ${traced ? 'on' : 'off'})`, async () => {
      const histories = index.map(({ file, workflowId }) => ({
        workflowId,
        history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))),
      }));
      let replayed = 0;
      const options = {
        workflowsPath: WORKFLOWS_PATH,
        interceptors: { workflowModules: traced ? [WORKFLOW_TRACING_INTERCEPTORS] : [] },
        ...workerTracing(undefined),
      };
      for await (const r of Worker.runReplayHistories(options, histories)) {
        expect(r.error, r.workflowId).toBeUndefined();
        replayed++;
      }
      expect(replayed).toBe(index.length);
    }, 120_000);
});
