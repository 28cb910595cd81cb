// The worker's side of tracing: activity interceptors (a span per activity, parented by the
// workflow's through the activity's headers) and the sink that carries the workflows' spans out of
// the sandbox to the exporter.
import type { WorkflowInfo } from '@temporalio/workflow';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  makeWorkflowExporter,
  type OpenTelemetryWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerOptions } from '@temporalio/worker';
import type { Tracing } from '../common/tracing.ts';

type TracingSinks = { exporter: OpenTelemetryWorkflowExporter };

/**
 * The exporter copies the workflow's info onto each span as attributes. Only its identity is kept:
 * the info also carries the memo, search attributes and the last run's result and failure, none of
 * which belong in a trace.
 */
function identityOf(info: WorkflowInfo): WorkflowInfo {
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    workflowType: info.workflowType,
    taskQueue: info.taskQueue,
    namespace: info.namespace,
    attempt: info.attempt,
  } as WorkflowInfo;
}

/** Options merged into Worker.create: interceptors and the span sink when on, a dropping sink when off. */
export function workerTracing(tracing: Tracing | undefined): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  if (!tracing) {
    // The workflow interceptors are bundled regardless; their spans have nowhere to go.
    const sinks: InjectedSinks<TracingSinks> = { exporter: { export: { fn: () => undefined } } };
    return { sinks };
  }
  const exporter = makeWorkflowExporter(tracing.processor, tracing.resource);
  const sinks: InjectedSinks<TracingSinks> = {
    exporter: {
      export: {
        ...exporter.export,
        fn: (info, spans) => exporter.export.fn(identityOf(info), spans),
      },
    },
  };
  return {
    sinks,
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
  };
}
