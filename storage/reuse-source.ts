// `--reuse-from <job output folder or job id>`: which job's answers a job may take. A folder that
// holds a finished job's summary.json names its job; anything else is taken as a workflow id. The
// store must hold answers of that job, or the flag would silently reuse nothing.
import fs from 'node:fs';
import path from 'node:path';
import type { AnswerStore } from './answers.ts';
import { outputFile } from './layout.ts';

/** `--reuse-from` names no job with stored answers; the message says what to pass instead. */
export class ReuseSourceError extends Error {
  override name = 'ReuseSourceError';
}

/** The workflow id `value` stands for (`base` resolves a relative folder). Throws ReuseSourceError. */
export function reuseSourceJob(value: string, base: string, store: AnswerStore): string {
  const dir = path.resolve(base, value);
  let jobId = value;
  if (fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    let summary: { workflowId?: unknown };
    try {
      summary = JSON.parse(fs.readFileSync(outputFile(dir, 'summary'), 'utf8')) as { workflowId?: unknown };
    } catch {
      throw new ReuseSourceError(
        `reuse from ${value}: that folder holds no summary.json of a finished job; pass a job's output folder or its workflow id`,
      );
    }
    if (typeof summary.workflowId !== 'string')
      throw new ReuseSourceError(`reuse from ${value}: its summary.json names no workflowId`);
    jobId = summary.workflowId;
  }
  if (!store.hasJob(jobId))
    throw new ReuseSourceError(
      `reuse from ${value}: no answers of job ${jobId} are stored (a job stores them as its lines succeed, unless it ran with --no-reuse; evicted answers are gone)`,
    );
  return jobId;
}
