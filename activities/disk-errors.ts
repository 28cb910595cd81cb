// File-system errors that a person must fix (a path that is a file, a missing data root, no
// permission, a full or read-only disk) fail the job at once with what to do; retrying them only
// hides the cause behind "planning…" for half an hour. Anything else is left to the retry policy.
import { ApplicationFailure } from '@temporalio/common';
import { PathOutsideDataRootError } from '../common/paths.ts';
import { ManifestError } from '../storage/manifest.ts';

const HINTS: Record<string, string> = {
  EEXIST: 'a file stands where a folder is needed: choose another --out or move the file',
  ENOTDIR: 'a file stands where a folder is needed: choose another --out or move the file',
  ENOENT: "it does not exist on this worker: check the path and the worker's BATCHPILOT_DATA_DIR",
  EACCES: 'permission denied: fix the permissions or choose another folder',
  EPERM: 'permission denied: fix the permissions or choose another folder',
  EROFS: 'the file system is read-only: choose a writable folder',
  ENOSPC: 'the disk is full: free space, then run the job again with the same --out',
};

export interface DiskContext {
  /** What was being done, e.g. "create the output folder out/". */
  what: string;
  path?: string;
  dataDir: string;
}

/** The non-retryable failure for an error a person must fix, or undefined for any other error. */
export function userFixableFailure(err: unknown, ctx: DiskContext): ApplicationFailure | undefined {
  if (err instanceof PathOutsideDataRootError)
    return ApplicationFailure.nonRetryable(err.message, 'PathOutsideDataRoot');
  const code = (err as NodeJS.ErrnoException)?.code;
  const hint = code ? HINTS[code] : undefined;
  if (!hint) return undefined;
  const where = (err as NodeJS.ErrnoException).path ?? ctx.path;
  return ApplicationFailure.nonRetryable(
    `cannot ${ctx.what}: ${code}${where ? ` on ${where}` : ''} (worker data root ${ctx.dataDir}): ${hint}`,
    'UserFixable',
  );
}

/** A work file that does not parse fails the job at once: a retry would read the same bytes. */
export function failIfDamaged(err: unknown): never {
  if (err instanceof ManifestError) throw ApplicationFailure.nonRetryable(err.message, 'WorkFolderDamaged');
  throw err;
}

/** Runs `fn`, turning an error a person must fix into a non-retryable failure. */
export function userFixable<T>(fn: () => T, ctx: DiskContext): T {
  const fail = (err: unknown): never => {
    throw userFixableFailure(err, ctx) ?? err;
  };
  try {
    const r = fn();
    return (r instanceof Promise ? r.catch(fail) : r) as T;
  } catch (err) {
    return fail(err);
  }
}
