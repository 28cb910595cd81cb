// A job's identity is its output folder: `<out>/.batchpilot/job.json` names the job that owns the
// folder and what it was started with. The worker's plan step writes it (the authority, since any
// command or the Web UI may start a job); `run` and `start` read it first so that the same command
// twice resumes or reports the finished job instead of buying its batches again.
import fs from 'node:fs';
import { jobRecordFile } from '../storage/layout.ts';
import type { JobInput } from './job-types.ts';

/** What makes two starts the same job: the input file as it is, and the options that shape requests. */
export interface JobFingerprint {
  input: string;
  inputBytes: number;
  inputMtimeMs: number;
  /** Options that change what is sent (JSON with sorted keys, so equal options compare equal). */
  options: string;
}

export interface JobRecord {
  jobId: string;
  fingerprint: JobFingerprint;
  createdAt: string;
}

function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

/**
 * The fingerprint of a job: a resumed job must send exactly what the first start would have sent.
 * Options that only steer how it runs (polling, concurrency, attempts, names, prices) may change.
 */
export function jobFingerprint(job: JobInput, inputStat: { size: number; mtimeMs: number }): JobFingerprint {
  const o = job.options;
  return {
    input: job.input,
    inputBytes: inputStat.size,
    inputMtimeMs: Math.round(inputStat.mtimeMs),
    options: sortedJson({
      endpoint: o.endpoint,
      completionWindow: o.completionWindow,
      limits: o.limits,
      dryRun: o.dryRun,
      mode: o.mode,
      thinking: o.thinking ?? null,
      thinkingBudget: o.thinkingBudget ?? null,
      csv: o.csv ?? null,
    }),
  };
}

/** What differs between the recorded start and this one, in words a user can act on. */
export function fingerprintDiff(was: JobFingerprint, now: JobFingerprint): string[] {
  const diff: string[] = [];
  if (was.input !== now.input) diff.push(`input was ${was.input}, now ${now.input}`);
  else if (was.inputBytes !== now.inputBytes || was.inputMtimeMs !== now.inputMtimeMs)
    diff.push(
      `${now.input} changed since the job started (${was.inputBytes} bytes, modified ${new Date(was.inputMtimeMs).toISOString()}; now ${now.inputBytes} bytes, modified ${new Date(now.inputMtimeMs).toISOString()})`,
    );
  if (was.options !== now.options) {
    const a = JSON.parse(was.options) as Record<string, unknown>;
    const b = JSON.parse(now.options) as Record<string, unknown>;
    for (const k of Object.keys({ ...a, ...b })) {
      if (JSON.stringify(a[k]) !== JSON.stringify(b[k]))
        diff.push(`${k} was ${JSON.stringify(a[k])}, now ${JSON.stringify(b[k])}`);
    }
  }
  return diff;
}

/** The record of the job that owns `outDir`, or undefined when none does (or it is unreadable). */
export function readJobRecord(outDir: string): JobRecord | undefined {
  try {
    return parseJobRecord(fs.readFileSync(jobRecordFile(outDir), 'utf8'));
  } catch {
    return undefined;
  }
}

/** A job record's text, or undefined when it names no job (torn, or written without a fingerprint). */
export function parseJobRecord(text: string | undefined): JobRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as Partial<JobRecord>;
    return typeof r.jobId === 'string' && r.fingerprint ? (r as JobRecord) : undefined;
  } catch {
    return undefined;
  }
}
