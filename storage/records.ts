// The work folder's small JSON records besides the manifests (manifest.ts): `job.json` (which job
// owns the folder), `plan.json` (the plan's summary, so a resumed job skips planning) and the
// collected markers (`outcomes/collected/r<r>-u<m>.json`: a unit's counts). Each has a schema and is
// parsed on read, never cast: a record that does not parse fails with its file's name and the fix
// (a job record that does not parse owns nothing, as before a fingerprint was recorded).
import fsp from 'node:fs/promises';
import { z } from 'zod';
import type { JobRecord } from '../common/job-record.ts';
import type { PlanSummary } from '../common/job-types.ts';
import { parseWorkRecord } from './manifest.ts';

const count = z.number().int().nonnegative();

export const jobRecordSchema = z.object({
  jobId: z.string().min(1),
  fingerprint: z.object({
    input: z.string(),
    inputBytes: count,
    inputMtimeMs: z.number(),
    options: z.string(),
  }),
  createdAt: z.string(),
});

/** A job record's text → the record, or undefined when it names no job (absent, torn, or older). */
export function parseJobRecord(text: string | undefined): JobRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = jobRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

// Fields the workflow reads back from plan.json; `options` is the job spec's (common/job-spec.ts
// validated it before it was written), kept whole.
export const planSummarySchema = z.looseObject({
  paths: z.object({ input: z.string(), outDir: z.string(), workDir: z.string() }),
  lines: count,
  valid: count,
  rejected: count,
  shardLines: z.array(count),
  shardTokens: z.array(z.object({ model: z.string(), tokens: count })).optional(),
  models: z.array(z.string()),
  options: z.looseObject({}).optional(),
  /** Lines answered from earlier jobs (absent when reuse was off). */
  reused: z.looseObject({ lines: count }).optional(),
});

export const collectedMarkerSchema = z.looseObject({
  succeeded: count,
  failed: count,
  retry: count,
  /** Lines the user's cancel stopped (inside `failed`); absent in markers written before it. */
  cancelled: count.optional(),
  batchId: z.string().nullable(),
  batchStatus: z.string().nullable(),
  fileErrors: z.array(z.object({ code: z.string(), message: z.string(), line: z.number().nullable() })),
  unattributed: z
    .array(
      z.looseObject({
        custom_id: z.string().nullable(),
        code: z.string(),
        message: z.string(),
        status_code: z.number().nullable().default(null),
      }),
    )
    .optional(),
});
export type CollectedMarker = z.infer<typeof collectedMarkerSchema>;

/** A collected unit's marker, parsed; fails naming the file when it is damaged. */
export async function readCollectedMarker(file: string): Promise<CollectedMarker> {
  return parseWorkRecord(collectedMarkerSchema, file, await fsp.readFile(file, 'utf8'), 'collected marker');
}

/** plan.json, parsed; undefined when absent (the job is planned again). */
export async function readPlanSummary(file: string): Promise<PlanSummary | undefined> {
  const content = await fsp.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (content === undefined) return undefined;
  return parseWorkRecord(planSummarySchema, file, content, 'plan summary') as unknown as PlanSummary;
}
