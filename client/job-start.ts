// Starting a job workflow from the CLI: id, memo, search attributes and the Web UI summary.
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { JOB_WORKFLOW, SEARCH_ATTRIBUTES, SEARCH_ATTRIBUTE_KEYS } from '../common/definitions.ts';
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

/** Whether the namespace has batchpilot's search attributes (the job then keeps them current). */
export function searchAttributesRegistered(client: Client): Promise<boolean> {
  return hasSearchAttributes(
    client,
    Object.values(SEARCH_ATTRIBUTES).map((a) => a.name),
  );
}

/** Whether the client encrypts payloads (common/codec.ts). */
export function encrypts(client: Client): boolean {
  return (client.options.dataConverter.payloadCodecs?.length ?? 0) > 0;
}

/**
 * A job's search attributes at start: status `planning`, and the input unless payloads are
 * encrypted (search attributes are indexed in plain text, so the input path then stays out).
 */
export function initialSearchAttributes(input: string, encrypted: boolean): SearchAttributePair[] {
  return [
    { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'planning' },
    ...(encrypted ? [] : [{ key: SEARCH_ATTRIBUTE_KEYS.input, value: input }]),
  ];
}

export async function startJob(
  client: Client,
  taskQueue: string,
  job: JobInput,
  workflowId: string,
): Promise<WorkflowHandle> {
  const searchAttributes = await searchAttributesRegistered(client);
  const args: JobInput = { ...job, searchAttributes };
  const o = job.options;
  return client.workflow.start(JOB_WORKFLOW, {
    taskQueue,
    workflowId,
    args: [args],
    memo: { input: job.input, outDir: job.outDir },
    ...(searchAttributes
      ? { typedSearchAttributes: initialSearchAttributes(job.input, encrypts(client)) }
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
