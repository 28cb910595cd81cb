// Where a user's path points: a local file under the data root, or an object in S3-compatible
// storage. `BATCHPILOT_STORAGE` (unset: the local data root; `s3://bucket/prefix`: object storage)
// decides where relative paths go; an `s3://bucket/key` path is object storage whatever the setting.
// A job's paths travel through workflow history as these strings: a local absolute path or an
// `s3://` URI, never credentials (the S3 client reads those from the worker's environment).
import path from 'node:path';
import { resolveInDataRoot } from '../common/paths.ts';
import { WORK_DIR_NAME } from './layout.ts';
import { isS3Uri, parseS3Uri, s3Uri } from './s3.ts';

export class StorageConfigError extends Error {
  override name = 'StorageConfigError';
}

/** Checks BATCHPILOT_STORAGE: unset, or an `s3://bucket[/prefix]` URI. */
export function checkStorageSetting(storage: string | undefined): string | undefined {
  if (storage === undefined || storage === '') return undefined;
  if (!isS3Uri(storage))
    throw new StorageConfigError(
      `BATCHPILOT_STORAGE=${storage}: give s3://<bucket>/<prefix> for object storage, or leave it unset for the local data root`,
    );
  try {
    parseS3Uri(storage);
  } catch (err) {
    throw new StorageConfigError(`BATCHPILOT_STORAGE: ${(err as Error).message}`);
  }
  return storage.replace(/\/+$/, '');
}

/** `a/b/../c` → `a/c`, refusing a key that climbs above its prefix. */
function normalKey(key: string, what: string): string {
  const parts: string[] = [];
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length === 0)
        throw new StorageConfigError(`${what}: "${key}" climbs above its storage prefix: remove the ".."`);
      parts.pop();
    } else parts.push(seg);
  }
  return parts.join('/');
}

/**
 * Resolves a user's path: an `s3://` URI as it is (normalized), a relative path under
 * BATCHPILOT_STORAGE when that is object storage, anything else under the local data root (which
 * throws PathOutsideDataRootError for a path that leaves it).
 */
export function resolveLocation(p: string, storage: string | undefined, dataDir: string): string {
  if (isS3Uri(p)) {
    const loc = parseS3Uri(p);
    return s3Uri({ bucket: loc.bucket, key: normalKey(loc.key, p) });
  }
  const base = checkStorageSetting(storage);
  if (base && !path.isAbsolute(p)) {
    const loc = parseS3Uri(base);
    // The relative path on its own, so that it cannot leave the prefix (as a local one cannot
    // leave the data root).
    return s3Uri({ bucket: loc.bucket, key: normalKey(`${loc.key}/${normalKey(p, p)}`, p) });
  }
  return resolveInDataRoot(dataDir, p);
}

/** The work folder of an output location: `<out>/.batchpilot`, for a folder or an `s3://` prefix. */
export function workLocationOf(out: string): string {
  return isS3Uri(out) ? `${out.replace(/\/+$/, '')}/${WORK_DIR_NAME}` : path.join(out, WORK_DIR_NAME);
}

/** The output location a work folder belongs to. */
export function outLocationOf(workDir: string): string {
  return isS3Uri(workDir) ? workDir.replace(/\/+$/, '').replace(/\/[^/]+$/, '') : path.dirname(workDir);
}

export { isS3Uri };
