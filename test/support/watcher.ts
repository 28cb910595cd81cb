// What a task queue's batch watcher did, read from its histories: each sweep's batches and result.
import type { Client } from '@temporalio/client';
import type { SweepResult } from '../../activities/watch.ts';

export interface Sweep {
  watched: number;
  result: SweepResult;
}

/** Every sweep the watcher made (all runs): how many batches it listed and what it found. */
export async function sweepsOf(client: Client, workflowId: string): Promise<Sweep[]> {
  const sweeps: Sweep[] = [];
  let runId: string | undefined;
  for (;;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const inputs = new Map<string, number>();
    const json = (data: Uint8Array | null | undefined): unknown =>
      JSON.parse(Buffer.from(data ?? new Uint8Array()).toString('utf8'));
    for (const ev of history.events ?? []) {
      const s = ev.activityTaskScheduledEventAttributes;
      if (s?.activityType?.name === 'sweepBatches') {
        const arg = json(s.input?.payloads?.[0]?.data) as { batches: unknown[] };
        inputs.set(String(ev.eventId), arg.batches.length);
      }
      const c = ev.activityTaskCompletedEventAttributes;
      if (c && inputs.has(String(c.scheduledEventId))) {
        sweeps.unshift({
          watched: inputs.get(String(c.scheduledEventId))!,
          result: json(c.result?.payloads?.[0]?.data) as SweepResult,
        });
      }
    }
    const prev = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!prev) return sweeps;
    runId = prev;
  }
}
