// Which of a job's shard workflows have ended, asked of Temporal itself. A shard reports its end to
// the job by signal; one that could not (terminated by an operator, timed out, or its signal
// refused) would otherwise leave the job waiting for ever. The job asks this for the shards it did
// not start itself (those it started, it hears of from their close events) now and then.
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { Unit, UnitEnd, UnitResult } from '../common/job-types.ts';
import { unitWorkflowId } from '../common/keys.ts';
import { failureFromError, unitName } from '../workflows/failures.ts';

export interface EndedUnitsInput {
  jobId: string;
  units: Unit[];
}

/** Describes at once at most this many (calls to the Temporal frontend, not to the provider). */
const AT_ONCE = 20;

async function endOf(client: Client, jobId: string, unit: Unit): Promise<UnitEnd | undefined> {
  const handle = client.workflow.getHandle(unitWorkflowId(jobId, unit.round, unit.index));
  const status = (await handle.describe()).status.name;
  // A shard continues-as-new while it polls: its latest run is the one that matters.
  if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') return undefined;
  try {
    return { result: (await handle.result()) as UnitResult };
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? (err.cause ?? err) : err;
    const failure = failureFromError(cause, unitName(unit));
    if (status === 'TERMINATED') failure.message = `the shard workflow was terminated (${failure.message})`;
    if (status === 'TIMED_OUT') failure.message = `the shard workflow timed out (${failure.message})`;
    return { unit, failure, ...(status === 'CANCELLED' ? { cancelled: true } : {}) };
  }
}

export function unitActivities() {
  return {
    /** The shard workflows among `units` that have ended: each one's result, or why it has none. */
    async endedUnits({ jobId, units }: EndedUnitsInput): Promise<UnitEnd[]> {
      const ctx = Context.current();
      const ended: UnitEnd[] = [];
      for (let i = 0; i < units.length; i += AT_ONCE) {
        const found = await Promise.all(units.slice(i, i + AT_ONCE).map((u) => endOf(ctx.client, jobId, u)));
        for (const e of found) if (e) ended.push(e);
        ctx.heartbeat(i);
      }
      return ended;
    },
  };
}
