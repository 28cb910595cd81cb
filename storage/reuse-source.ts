// `--reuse-from <job output folder or job id>`: which job's answers a job may take. A folder (or,
// for a job on object storage, an `s3://` output prefix) that holds a finished job's summary.json
// names its job; anything else is taken as a workflow id. The store must hold answers of that job,
// or the flag would silently reuse nothing.
import fs from 'node:fs';
import path from 'node:path';
import type { AnswerStore } from './answers.ts';
import { OUTPUT_NAMES } from './layout.ts';
import { isS3Uri } from './s3.ts';
import { readText } from './store.ts';
import type { Stores } from './workspace.ts';

/** `--reuse-from` names no job with stored answers; the message says what to pass instead. */
export class ReuseSourceError extends Error {
  override name = 'ReuseSourceError';
}

/** The workflow id a finished job's summary.json (its text, or undefined when absent) names. */
function jobOfSummary(value: string, text: string | undefined): string {
  let summary: { workflowId?: unknown };
  try {
    summary = JSON.parse(text ?? '') as { workflowId?: unknown };
  } catch {
    throw new ReuseSourceError(
      `reuse from ${value}: that folder holds no summary.json of a finished job; pass a job's output folder or its workflow id`,
    );
  }
  if (typeof summary.workflowId !== 'string')
    throw new ReuseSourceError(`reuse from ${value}: its summary.json names no workflowId`);
  return summary.workflowId;
}

/**
 * The workflow id `value` stands for: a local folder (`base` resolves a relative one) or an `s3://`
 * prefix names the job whose summary.json it holds, anything else is the id itself. The store must
 * hold answers of that job. Throws ReuseSourceError.
 */
export async function resolveReuseSource(
  value: string,
  base: string,
  store: AnswerStore,
  stores: Stores,
): Promise<string> {
  const out = isS3Uri(value) ? value : path.resolve(base, value);
  const isOutput = isS3Uri(value) || fs.statSync(out, { throwIfNoEntry: false })?.isDirectory() === true;
  const jobId = isOutput
    ? jobOfSummary(value, await readText(stores.forOut(out), OUTPUT_NAMES.summary).catch(() => undefined))
    : value;
  if (!(await store.hasJob(jobId)))
    throw new ReuseSourceError(
      `reuse from ${value}: no answers of job ${jobId} are stored (a job stores them as its lines succeed, unless it ran with --no-reuse; evicted answers are gone)`,
    );
  return jobId;
}
