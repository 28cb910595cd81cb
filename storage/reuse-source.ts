// `--reuse-from <job output folder or job id>`: which job's answers a job may take. A folder (or,
// for a job on object storage, an `s3://` output prefix) that holds a finished job's summary.json
// names its job; anything else is taken as a workflow id. The store must hold answers of that job,
// or the flag would silently reuse nothing.
import fs from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import type { AnswerStore } from './answers.ts';
import { OUTPUT_NAMES, outputFile } from './layout.ts';
import { isS3Uri, keyPrefix, parseS3Uri, type ObjectStore } from './s3.ts';

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

/** The job `value` names when it is a local folder (`base` resolves a relative one), else itself. */
function localJobOf(value: string, base: string): string {
  const dir = path.resolve(base, value);
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return value;
  let text: string | undefined;
  try {
    text = fs.readFileSync(outputFile(dir, 'summary'), 'utf8');
  } catch {
    text = undefined;
  }
  return jobOfSummary(value, text);
}

const notStored = (value: string, jobId: string) =>
  new ReuseSourceError(
    `reuse from ${value}: no answers of job ${jobId} are stored (a job stores them as its lines succeed, unless it ran with --no-reuse; evicted answers are gone)`,
  );

/**
 * The workflow id `value` stands for in any store: an `s3://` prefix is read through `objects`
 * (its summary.json), a folder on the data root as above. Throws ReuseSourceError.
 */
export async function resolveReuseSource(
  value: string,
  base: string,
  store: AnswerStore,
  objects: () => ObjectStore,
): Promise<string> {
  let jobId: string;
  if (isS3Uri(value)) {
    const loc = parseS3Uri(value);
    const key = `${keyPrefix(loc.key)}${OUTPUT_NAMES.summary}`;
    const text = await objects()
      .read({ bucket: loc.bucket, key })
      .then(async (s) => (await buffer(s)).toString('utf8'))
      .catch(() => undefined);
    jobId = jobOfSummary(value, text);
  } else jobId = localJobOf(value, base);
  if (!(await store.hasJob(jobId))) throw notStored(value, jobId);
  return jobId;
}
