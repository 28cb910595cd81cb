// Reading a job from the client side: progress by query, the outcome when it has ended.
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { rootCause } from '@temporalio/common';
// CommonJS whose exports Node's ESM loader cannot see by name: take the default.
import proto from '@temporalio/proto';
import { PROGRESS_QUERY } from '../common/definitions.ts';
import type { JobProgress, JobSummary } from '../common/job-types.ts';
import { exitCodeOf, renderAlerts, renderProgress, renderSummary } from './progress-view.ts';

/** 0 when the job completed with every line answered, 1 otherwise (progress-view.ts decides). */
export { exitCodeOf };

/**
 * Says so when no worker polls the job's task queue: the job then waits without a sign, and a
 * progress query would hang until it times out. Undefined when a worker polls (or it cannot tell).
 */
export async function noWorkerNote(client: Client, handle: WorkflowHandle): Promise<string | undefined> {
  try {
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') return undefined;
    const res = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: d.taskQueue },
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    if ((res.pollers ?? []).length > 0) return undefined;
    return `job ${handle.workflowId} is running, but no worker polls its task queue "${d.taskQueue}" in namespace ${client.options.namespace}: start one with "batchpilot worker" (same TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and BATCHPILOT_TASK_QUEUE=${d.taskQueue})`;
  } catch {
    return undefined;
  }
}

export async function queryProgress(handle: WorkflowHandle): Promise<JobProgress> {
  return handle.query<JobProgress>(PROGRESS_QUERY);
}

/** The job's summary, or the summary carried by its failure; undefined while it runs. */
export async function jobOutcome(
  handle: WorkflowHandle,
): Promise<{ status: string; summary?: JobSummary; error?: string }> {
  const d = await handle.describe();
  const status = d.status.name;
  if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') return { status };
  try {
    return { status, summary: (await handle.result()) as JobSummary };
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const cause = err.cause as { details?: unknown[]; message?: string } | undefined;
      const summary = cause?.details?.[0] as JobSummary | undefined;
      // The summary already lists each failure with its reason; the error line is for a job that
      // failed without one (planning, the merge).
      const error = summary?.failures?.length ? undefined : (rootCause(err.cause) ?? err.message);
      return { status, ...(summary ? { summary } : {}), ...(error ? { error } : {}) };
    }
    return { status, error: (err as Error).message };
  }
}

/**
 * Shows progress until the job ends: a redrawn bar on a TTY, one line per change otherwise.
 * Returns the exit code: 0 when the job completed with every line answered, 1 otherwise.
 */
export async function watchJob(
  client: Client,
  workflowId: string,
  out: NodeJS.WritableStream,
  intervalMs = 1000,
): Promise<number> {
  const handle = client.workflow.getHandle(workflowId);
  const tty = (out as NodeJS.WriteStream).isTTY === true;
  let last = '';
  const alerted = new Set<string>();
  let drawnLines = 0;
  const resultPromise = handle.result().then(
    () => undefined,
    () => undefined,
  );
  let ended = false;
  void resultPromise.then(() => (ended = true));
  let workerChecked = 0;
  let warnedNoWorker = false;
  while (!ended) {
    if (!warnedNoWorker && Date.now() - workerChecked > 15_000) {
      workerChecked = Date.now();
      const note = await noWorkerNote(client, handle);
      if (note) {
        out.write(`${note}\n`);
        warnedNoWorker = true;
      }
    }
    try {
      const p = await queryProgress(handle);
      const text = [renderProgress(p), ...renderAlerts(p)].join('\n');
      if (tty) {
        // Lines cut to the terminal's width: a wrapped line would make the redraw climb too few rows.
        const width = Math.max(20, ((out as NodeJS.WriteStream).columns ?? 80) - 1);
        const rows = text.split('\n').map((r) => (r.length > width ? r.slice(0, width - 1) + '…' : r));
        if (drawnLines) out.write(`\x1b[${drawnLines}A\x1b[0J`);
        out.write(rows.join('\n') + '\n');
        drawnLines = rows.length;
      } else {
        // Without a TTY, one line per change of the counts (the ETA alone changes every second),
        // and each alert once (an unreachable provider's changes with its minutes: once a minute).
        const line = text.split('\n')[1]!;
        const key = line.replace(/\s+ETA .*$/, '');
        if (key !== last) out.write(line + '\n');
        last = key;
        for (const a of renderAlerts(p)) {
          if (!alerted.has(a)) out.write(a + '\n');
          alerted.add(a);
        }
      }
    } catch {
      // The query can fail while a worker restarts or the run continues-as-new: try again.
    }
    await Promise.race([resultPromise, new Promise((r) => setTimeout(r, intervalMs))]);
  }
  const outcome = await jobOutcome(handle);
  if (outcome.summary) out.write(renderSummary(outcome.summary) + '\n');
  if (outcome.error) out.write(`job ${workflowId} ${outcome.status.toLowerCase()}: ${outcome.error}\n`);
  return exitCodeOf(outcome.summary);
}
