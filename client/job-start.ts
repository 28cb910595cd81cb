// Starting a job workflow from the CLI: id, memo, search attributes and the Web UI summary.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { JOB_WORKFLOW, SEARCH_ATTRIBUTES } from '../common/definitions.ts';
import type { JobInput } from '../common/job-types.ts';
import { hasSearchAttributes } from './temporal.ts';

export function defaultJobId(input: string, name: string | undefined, now = new Date()): string {
  const base = (name ?? input.split('/').pop() ?? 'job')
    .replace(/\.(jsonl|csv)$/i, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 60);
  return `batchpilot-${base}-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}

export async function startJob(
  client: Client,
  taskQueue: string,
  job: JobInput,
  workflowId: string,
): Promise<WorkflowHandle> {
  const searchAttributes = await hasSearchAttributes(
    client,
    Object.values(SEARCH_ATTRIBUTES).map((a) => a.name),
  );
  const args: JobInput = { ...job, searchAttributes };
  const o = job.options;
  // Search attributes are indexed in plain text: with payload encryption the input path stays out.
  const encrypted = (client.options.dataConverter.payloadCodecs?.length ?? 0) > 0;
  return client.workflow.start(JOB_WORKFLOW, {
    taskQueue,
    workflowId,
    args: [args],
    memo: { input: job.input, outDir: job.outDir },
    ...(searchAttributes
      ? {
          searchAttributes: {
            ...(encrypted ? {} : { [SEARCH_ATTRIBUTES.input.name]: [job.input] }),
            [SEARCH_ATTRIBUTES.status.name]: ['planning'],
          },
        }
      : {}),
    staticSummary: `batchpilot ${o.dryRun ? 'dry run' : 'job'}: ${job.input} → ${job.outDir}`,
    staticDetails: [
      `**input** \`${job.input}\``,
      `**output** \`${job.outDir}\``,
      `**endpoint** ${o.endpoint}, window ${o.completionWindow}, mode ${o.mode}${o.dryRun ? ', dry run' : ''}`,
      `**limits** ${o.limits.maxLines} lines / ${o.limits.maxBytes} bytes per shard, ${o.maxInFlight} batches in flight, ${o.maxAttempts} attempts per line`,
    ].join('\n\n'),
  });
}
