// Activity log lines carry their Temporal context (workflow, run, activity, attempt), so one
// grep of a workflow id finds everything it did across workers.
import { Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import type { ActivityDeps } from './deps.ts';

export function logFor(deps: ActivityDeps): Logger {
  try {
    const info = Context.current().info;
    return deps.logger.child({
      workflowId: info.workflowExecution?.workflowId,
      runId: info.workflowExecution?.runId,
      activity: info.activityType,
      attempt: info.attempt,
    });
  } catch {
    return deps.logger;
  }
}
