// What `run` and `start` can know from the output folder before any server starts: whether the
// input and folder are usable, and which job the folder holds. The same command twice resumes the
// job or reports it finished; it never starts a second job that would buy the same batches.
import fs from 'node:fs';
import path from 'node:path';
import { fingerprintDiff, jobFingerprint, readJobRecord, type JobRecord } from '../common/job-record.ts';
import { outputFile } from '../storage/layout.ts';
import type { JobInput, JobSummary } from '../common/job-types.ts';
import { PathOutsideDataRootError, resolveInDataRoot } from '../common/paths.ts';
import { UsageError } from './command.ts';

export interface LocalJob {
  input: string;
  out: string;
  stat: { size: number; mtimeMs: number };
  /**
   * Read already (a job in object storage, client/job-store.ts): the folder's job record and
   * summary, null when absent. Read from the local folder when undefined.
   */
  record?: JobRecord | null;
  summary?: JobSummary | null;
}

function inRoot(dataDir: string, p: string, flag: string): string {
  try {
    return resolveInDataRoot(dataDir, p);
  } catch (err) {
    if (err instanceof PathOutsideDataRootError) throw new UsageError(`${flag}: ${err.message}`);
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${flag}: cannot use ${p} under the data root ${dataDir} (${code ?? (err as Error).message})`,
    );
  }
}

/** Blank when its first bytes hold nothing but white space and there are no more. */
function isBlank(file: string, size: number): boolean {
  if (size === 0) return true;
  if (size > 1 << 16) return false;
  return fs.readFileSync(file, 'utf8').trim() === '';
}

/** Every check that needs no server; a problem is a UsageError (exit 2) naming the fix. */
export function checkJobLocally(dataDir: string, job: JobInput): LocalJob {
  if (!fs.existsSync(dataDir))
    throw new UsageError(`the data root ${dataDir} does not exist: create it or set BATCHPILOT_DATA_DIR`);
  const input = inRoot(dataDir, job.input, '<input>');
  let stat: fs.Stats;
  try {
    stat = fs.statSync(input);
    fs.accessSync(input, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `input ${job.input} does not exist (looked at ${input})`
        : `input ${job.input} cannot be read (${code}): fix its permissions`,
    );
  }
  if (!stat.isFile()) throw new UsageError(`input ${job.input} is not a file`);
  if (isBlank(input, stat.size))
    throw new UsageError(`nothing to send: ${job.input} is empty (one JSON request per line is expected)`);
  const out = inRoot(dataDir, job.outDir, '--out');
  let existing = out;
  while (!fs.existsSync(existing)) existing = path.dirname(existing);
  if (!fs.statSync(existing).isDirectory())
    throw new UsageError(
      existing === out
        ? `--out ${job.outDir} is a file: give a folder (it is created when missing)`
        : `--out ${job.outDir}: ${existing} is a file, so the folder cannot be created there`,
    );
  try {
    fs.accessSync(existing, fs.constants.W_OK);
  } catch {
    throw new UsageError(`--out ${job.outDir}: ${existing} is not writable`);
  }
  return { input, out, stat };
}

export type JobDecision =
  | { kind: 'new'; id: string }
  | { kind: 'resume'; id: string }
  | { kind: 'finished'; id: string; summary: JobSummary };

function readSummary(out: string): JobSummary | undefined {
  try {
    return JSON.parse(fs.readFileSync(outputFile(out, 'summary'), 'utf8')) as JobSummary;
  } catch {
    return undefined;
  }
}

/** Which job this command is: a new one, the folder's own to resume, or the folder's finished one. */
export function decideJob(opts: {
  local: LocalJob;
  job: JobInput;
  requestedId: string | undefined;
  force: boolean;
  newId: () => string;
}): JobDecision {
  const { local, job, requestedId } = opts;
  const record: JobRecord | undefined =
    local.record === undefined ? readJobRecord(local.out) : (local.record ?? undefined);
  if (!record) return { kind: 'new', id: requestedId ?? opts.newId() };
  if (opts.force) {
    if (requestedId === record.jobId)
      throw new UsageError(
        `--force starts a fresh job: give it another --id than ${record.jobId}, or drop --id`,
      );
    return { kind: 'new', id: requestedId ?? opts.newId() };
  }
  const how = `resume it with the same command (without --id, or --id ${record.jobId}), start afresh with --force, or choose another --out`;
  if (requestedId !== undefined && requestedId !== record.jobId)
    throw new UsageError(`--out ${job.outDir} holds job ${record.jobId}, not ${requestedId}: ${how}`);
  const diff = fingerprintDiff(record.fingerprint, jobFingerprint(job, local.stat));
  if (diff.length > 0)
    throw new UsageError(
      `--out ${job.outDir} holds job ${record.jobId}, started differently: ${diff.join('; ')}. Run it as it was started to resume it, start afresh with --force, or choose another --out`,
    );
  const summary = local.summary === undefined ? readSummary(local.out) : (local.summary ?? undefined);
  if (summary?.workflowId === record.jobId && summary.status === 'completed')
    return { kind: 'finished', id: record.jobId, summary };
  return { kind: 'resume', id: record.jobId };
}
