// What the CLI reads of a job kept in object storage (an `s3://` input or --out, or relative paths
// under an s3:// BATCHPILOT_STORAGE), through the same JobStore the workers write with. The local
// folder's checks stay in job-folder.ts; this gives `run`, `start` and `results` the same view of
// a job whose outputs are objects.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseJobRecord } from '../common/job-record.ts';
import type { JobInput, JobSummary } from '../common/job-types.ts';
import {
  JOB_OUTPUTS,
  JOB_RECORD_NAME,
  OUTPUT_NAMES,
  WORK_DIR_NAME,
  type OutputName,
} from '../storage/layout.ts';
import { isS3Uri, resolveLocation, StorageConfigError } from '../storage/location.ts';
import { fileBody, readText, type JobStore } from '../storage/store.ts';
import type { Stores } from '../storage/workspace.ts';
import { UsageError } from './command.ts';
import type { LocalJob } from './job-folder.ts';
import { writeResultsCsv } from './results-csv.ts';

/** Where the job's input and outputs are, as the worker will resolve them. */
export function jobLocations(
  dataDir: string,
  storage: string | undefined,
  job: Pick<JobInput, 'input' | 'outDir'>,
): { input: string; out: string } | undefined {
  if (!isS3Uri(job.input) && !isS3Uri(job.outDir) && !storage) return undefined;
  try {
    const input = resolveLocation(job.input, storage, dataDir);
    const out = resolveLocation(job.outDir, storage, dataDir);
    return isS3Uri(input) || isS3Uri(out) ? { input, out } : undefined;
  } catch (err) {
    if (err instanceof StorageConfigError) throw new UsageError(err.message);
    throw err;
  }
}

const parseSummary = (text: string | undefined): JobSummary | undefined => {
  try {
    return text === undefined ? undefined : (JSON.parse(text) as JobSummary);
  } catch {
    return undefined;
  }
};

/**
 * The checks of job-folder.ts's checkJobLocally for a job in object storage: the input exists and
 * is not empty; the output location is readable (credentials and bucket are checked here, before
 * any server starts); and which job its record names, with its summary.
 */
export async function checkJobInStore(
  stores: Stores,
  locations: { input: string; out: string },
  job: JobInput,
): Promise<LocalJob> {
  const source = stores.forFile(locations.input);
  let stat;
  try {
    stat = await source.store.stat(source.key);
  } catch (err) {
    throw new UsageError(`<input>: ${(err as Error).message}`);
  }
  if (!stat) throw new UsageError(`input ${job.input} does not exist (looked at ${locations.input})`);
  if (stat.size === 0)
    throw new UsageError(`nothing to send: ${job.input} is empty (one JSON request per line is expected)`);
  const store = stores.forOut(locations.out);
  let record: string | undefined;
  let summary: string | undefined;
  try {
    record = await readText(store, `${WORK_DIR_NAME}/${JOB_RECORD_NAME}`);
    summary = await readText(store, OUTPUT_NAMES.summary);
  } catch (err) {
    throw new UsageError(`--out ${job.outDir}: ${(err as Error).message}`);
  }
  return {
    input: locations.input,
    out: locations.out,
    stat: { size: stat.size, mtimeMs: stat.mtimeMs },
    record: parseJobRecord(record) ?? null,
    summary: parseSummary(summary) ?? null,
  };
}

/**
 * Where `run` keeps its lock and embedded server database for an output location: the folder
 * itself when local; for an `s3://` one a local folder under the data root named by its hash
 * (a lock and a database are local things).
 */
export function localRunRoot(dataDir: string, out: string): string {
  if (!isS3Uri(out)) return out;
  return path.join(
    dataDir,
    WORK_DIR_NAME,
    's3-runs',
    createHash('sha256').update(out).digest('hex').slice(0, 16),
  );
}

/** The outputs present under `out`, as the locations a user reads them at. */
export async function outputsOf(store: JobStore): Promise<string[]> {
  const found: string[] = [];
  for (const name of JOB_OUTPUTS)
    if ((await store.size(OUTPUT_NAMES[name])) !== undefined) found.push(store.describe(OUTPUT_NAMES[name]));
  return found;
}

/**
 * results.csv beside results.jsonl in a store: results.jsonl is streamed to a temporary local file,
 * converted, and the CSV written back as an object. Returns its location and rows, or undefined
 * when there are no results.
 */
export async function writeStoredResultsCsv(
  store: JobStore,
): Promise<{ at: string; rows: number } | undefined> {
  const results: OutputName = 'results';
  if ((await store.size(OUTPUT_NAMES[results])) === undefined) return undefined;
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'batchpilot-csv-'));
  try {
    const jsonl = path.join(tmp, OUTPUT_NAMES.results);
    await pipeline(await store.read(OUTPUT_NAMES.results), fs.createWriteStream(jsonl));
    const csv = path.join(tmp, OUTPUT_NAMES.resultsCsv);
    const rows = await writeResultsCsv(jsonl, csv);
    await store.write(OUTPUT_NAMES.resultsCsv, fileBody(csv));
    return { at: store.describe(OUTPUT_NAMES.resultsCsv), rows };
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
