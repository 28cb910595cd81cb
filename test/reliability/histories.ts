// What a job's histories say after a scenario: which activities had to be retried and why, and
// where the time went. Read from every run of the job and of its shard workflows.
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

export interface Retried {
  /** Activity executions that needed more than one attempt. */
  executions: number;
  /** Attempts beyond the first, summed. */
  extraAttempts: number;
  /** A few of the failures that caused them. */
  failures: string[];
}

/**
 * Reads the history of every run of the job and of its shard workflows (continue-as-new runs
 * included) and reports, per activity type, the executions that took more than one attempt.
 */
export async function activityRetries(client: Client, jobId: string): Promise<Record<string, Retried>> {
  const out: Record<string, Retried> = {};
  for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH "${jobId}"` })) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    const types = new Map<string, string>();
    for (const e of history.events ?? []) {
      const id = String(e.eventId);
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled) types.set(id, scheduled.activityType?.name ?? '?');
      const started = e.activityTaskStartedEventAttributes;
      if (started && (started.attempt ?? 1) > 1) {
        const type = types.get(String(started.scheduledEventId)) ?? '?';
        const r = (out[type] ??= { executions: 0, extraAttempts: 0, failures: [] });
        r.executions++;
        r.extraAttempts += (started.attempt ?? 1) - 1;
        const msg = started.lastFailure?.message;
        if (msg && r.failures.length < 6 && !r.failures.includes(msg)) r.failures.push(msg);
      }
    }
  }
  return out;
}

/** The longest quiet stretches in the job's histories: where the time went. */
export async function longestGaps(client: Client, jobId: string, top = 8): Promise<string[]> {
  const gaps: { ms: number; text: string }[] = [];
  const names = proto.temporal.api.enums.v1.EventType as unknown as Record<number, string>;
  const eventName = (e: { eventType?: number | null }) =>
    (names[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, '');
  for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH "${jobId}"` })) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    const events = history.events ?? [];
    const types = new Map<string, string>();
    for (let i = 1; i < events.length; i++) {
      const e = events[i]!;
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled) types.set(String(e.eventId), scheduled.activityType?.name ?? '?');
      const t = (x: (typeof events)[number]) =>
        Number(x.eventTime?.seconds ?? 0) * 1000 + Math.floor((x.eventTime?.nanos ?? 0) / 1e6);
      const ms = t(e) - t(events[i - 1]!);
      const started = e.activityTaskStartedEventAttributes;
      const detail = started
        ? ` (${types.get(String(started.scheduledEventId)) ?? '?'}, attempt ${started.attempt ?? 1}` +
          `${started.lastFailure?.message ? `, last failure: ${started.lastFailure.message}` : ''})`
        : '';
      gaps.push({
        ms,
        text: `${(ms / 1000).toFixed(1)} s in ${wf.workflowId} between #${String(events[i - 1]!.eventId)} ${eventName(events[i - 1]!)} and ${eventName(e)}${detail}`,
      });
    }
  }
  return gaps
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((g) => g.text);
}
