// A job that continues-as-new with shards running (the dev server here suggests it at 60 events):
// shards outlive the run that started them, the next run re-attaches them and keeps launching, a
// cancel reaches the re-attached ones, and one terminated by an operator does not hang the job.
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import type { JobSummary } from '../../common/job-types.ts';
import { unitWorkflowId } from '../../common/keys.ts';
import { jobOptions, readJsonl, startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { firstAndLast, recordHistories } from '../support/histories.ts';
import { expectInvariant } from '../support/invariant.ts';

/** Slow enough that shards are still running when the job's history passes 60 events. */
const SLOW = { seed: 1, validatingMs: 200, perLineMs: 1500, finalizingMs: 200 };

interface Span {
  index: number;
  /** The job run that started the shard. */
  parentRunId: string;
  start: number;
  end: number | undefined;
}

/** Each round-1 shard's first start, last close and the job run that started it. */
async function shardSpans(h: Harness, jobId: string, shards: number): Promise<Span[]> {
  const spans: Span[] = [];
  for (let index = 0; index < shards; index++) {
    const id = unitWorkflowId(jobId, 1, index);
    const last = await h.client.workflow.getHandle(id).describe();
    const firstRunId = last.raw.workflowExecutionInfo?.firstRunId ?? last.runId;
    const first = await h.client.workflow.getHandle(id, firstRunId).describe();
    spans.push({
      index,
      parentRunId: first.parentExecution?.runId ?? '',
      start: first.startTime.getTime(),
      end: last.closeTime?.getTime(),
    });
  }
  return spans;
}

/** The job's runs, oldest first. */
async function jobRuns(h: Harness, jobId: string): Promise<{ runId: string; start: number }[]> {
  const runs: { runId: string; start: number }[] = [];
  for await (const r of h.client.workflow.list({ query: `WorkflowId = '${jobId}'` }))
    runs.push({ runId: r.runId, start: r.startTime.getTime() });
  return runs.sort((a, b) => a.start - b.start);
}

/** Waits until the job's current run has a running shard that an earlier run started. */
async function reattachedShards(h: Harness, jobId: string, shards: number): Promise<string[]> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const current = (await h.client.workflow.getHandle(jobId).describe()).runId;
    const ids: string[] = [];
    for (let index = 0; index < shards; index++) {
      const id = unitWorkflowId(jobId, 1, index);
      const d = await h.client.workflow
        .getHandle(id)
        .describe()
        .catch(() => undefined);
      if (d?.status.name !== 'RUNNING') continue;
      const firstRunId = d.raw.workflowExecutionInfo?.firstRunId ?? d.runId;
      const first = await h.client.workflow.getHandle(id, firstRunId).describe();
      if (first.parentExecution?.runId !== current) ids.push(id);
    }
    if (ids.length > 0) return ids;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no shard of ${jobId} was re-attached by a later run within 2 minutes`);
}

/** A run that continued as new while children it started were still running. */
async function handoverRun(h: Harness, jobId: string, runs: { runId: string }[]) {
  for (const { runId } of runs) {
    const history = await h.client.workflow.getHandle(jobId, runId).fetchHistory();
    const events = history.events ?? [];
    const started = events.filter((e) => e.childWorkflowExecutionStartedEventAttributes).length;
    const closed = events.filter(
      (e) =>
        e.childWorkflowExecutionCompletedEventAttributes ??
        e.childWorkflowExecutionFailedEventAttributes ??
        e.childWorkflowExecutionCanceledEventAttributes ??
        e.childWorkflowExecutionTerminatedEventAttributes,
    ).length;
    const continued = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes;
    if (continued && started > closed) return history;
  }
  throw new Error('no run continued as new with its own children running');
}

describe('a job that never idles', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('keeps launching across continue-as-new while shards run', { timeout: 300_000 }, async () => {
    h = await startHarness({ faults: { ...SLOW, perLineMs: 400 } });
    const input = writeChatInput(h.dataDir, 'nonstop.jsonl', 48);
    const jobId = `nonstop-${Date.now()}`;
    const summary = await h.runJob(
      input,
      'out-nonstop',
      { limits: { maxLines: 3, maxBytes: 500_000_000, maxLineBytes: 6_000_000 }, maxInFlight: 4 },
      jobId,
    );
    expect(summary.status).toBe('completed');
    expect(summary.shards).toBe(16);
    expect(summary.lines.succeeded).toBe(48);
    await expectInvariant(h, path.join(h.dataDir, 'out-nonstop'), 48);
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(16);
    expect(Object.values(stats.batchesByInputFile).every((n) => n === 1)).toBe(true);

    const runs = await jobRuns(h, jobId);
    expect(runs.length).toBeGreaterThan(1);
    const spans = await shardSpans(h, jobId, 16);
    const runOf = new Map(runs.map((r, i) => [r.runId, i]));
    // No gap at a continue-as-new: some shard that a later run started began while a shard of an
    // earlier run was still running (a job that drained its children first could not do this).
    const overlaps = spans.filter((later) =>
      spans.some(
        (earlier) =>
          runOf.get(earlier.parentRunId)! < runOf.get(later.parentRunId)! && later.start < earlier.end!,
      ),
    );
    expect(overlaps.length).toBeGreaterThan(0);
    // Shards were started by more than one run.
    expect(new Set(spans.map((s) => s.parentRunId)).size).toBeGreaterThan(1);

    // The first run, and a later one that re-attached shards and continued as new with shards of
    // its own still running, replay against the workflow code; recorded for test/replay with
    // RECORD_HISTORIES=1.
    const [first] = await firstAndLast(h.client, jobId);
    const handover = await handoverRun(h, jobId, runs.slice(1));
    const histories = [
      { file: 'job-nonstop-first.json', workflowId: jobId, history: first },
      { file: 'job-nonstop-handover.json', workflowId: jobId, history: handover },
    ];
    const bundle = { code: fs.readFileSync(inject('workflowBundlePath'), 'utf8') };
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, histories))
      expect(r.error, r.workflowId).toBeUndefined();
    if (process.env.RECORD_HISTORIES === '1') recordHistories(histories);
  });

  it('cancels shards that an earlier run started, and their batches', { timeout: 300_000 }, async () => {
    h = await startHarness({ faults: SLOW });
    const input = writeChatInput(h.dataDir, 'nonstop-cancel.jsonl', 40);
    const jobId = `nonstop-cancel-${Date.now()}`;
    const handle = await h.client.workflow.start(JOB_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: jobId,
      args: [
        {
          input,
          outDir: 'out-nonstop-cancel',
          options: jobOptions({
            limits: { maxLines: 4, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
            maxInFlight: 4,
          }),
        },
      ],
    });
    const attached = await reattachedShards(h, jobId, 10);
    await handle.cancel();
    const summary = (await handle.result()) as JobSummary;
    expect(summary.status).toBe('cancelled');
    const out = path.join(h.dataDir, 'out-nonstop-cancel');
    await expectInvariant(h, out, 40);
    for (const id of attached) {
      const d = await h.client.workflow.getHandle(id).describe();
      expect(d.status.name, id).not.toBe('RUNNING');
    }
    // Their batches were cancelled at the provider, their unanswered lines marked so.
    const stats = await h.stats();
    expect(stats.requests.cancel ?? 0).toBeGreaterThanOrEqual(attached.length);
    const errors = readJsonl<{ error: { code: string } }>(path.join(out, 'errors.jsonl'));
    expect(errors.some((e) => e.error.code === 'batch_cancelled')).toBe(true);
  });

  it('does not hang when a re-attached shard is terminated', { timeout: 300_000 }, async () => {
    h = await startHarness({ faults: SLOW });
    const input = writeChatInput(h.dataDir, 'nonstop-term.jsonl', 24);
    const jobId = `nonstop-term-${Date.now()}`;
    const handle = await h.client.workflow.start(JOB_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: jobId,
      args: [
        {
          input,
          outDir: 'out-nonstop-term',
          options: jobOptions({
            limits: { maxLines: 4, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
            maxInFlight: 3,
          }),
        },
      ],
    });
    const [victim] = await reattachedShards(h, jobId, 6);
    await h.client.workflow.getHandle(victim!).terminate('stopped by an operator in a test');
    // The shard cannot report; the job's check finds it and the job ends, failed for that shard.
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const out = path.join(h.dataDir, 'out-nonstop-term');
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as JobSummary;
    expect(summary.status).toBe('failed');
    const shard = Number(victim!.split('shard-').pop());
    const failure = summary.failures?.find((f) => f.unit === `shard-${shard}/round-1`);
    expect(failure?.message).toMatch(/terminated/);
    // Every other shard's lines were answered; the terminated one's carry its failure.
    await expectInvariant(h, out, 24);
    expect(summary.lines.failed).toBe(4);
    expect(summary.lines.succeeded).toBe(20);
  });
});
