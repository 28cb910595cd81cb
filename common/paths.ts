// Path confinement: the worker reads inputs and writes outputs only under its data root. A path
// that leaves it (`..`, absolute elsewhere, a symlink out) is refused with a clear error.
import fs from 'node:fs';
import path from 'node:path';

/** Thrown when a user path leaves the data root; never retried. */
export class PathOutsideDataRootError extends Error {
  override name = 'PathOutsideDataRootError';
}

/** Resolves `p` (relative to the data root) and proves it stays inside the root, symlinks included. */
export function resolveInDataRoot(dataRoot: string, p: string): string {
  const root = fs.realpathSync(path.resolve(dataRoot));
  const candidate = path.resolve(root, p);
  // Resolve symlinks of the longest existing prefix: the rest does not exist yet, so cannot be a link.
  let existing = candidate;
  const rest: string[] = [];
  while (!fs.existsSync(existing)) {
    const parent = path.dirname(existing);
    if (parent === existing) break;
    rest.unshift(path.basename(existing));
    existing = parent;
  }
  const real = path.join(fs.realpathSync(existing), ...rest);
  if (real !== root && !real.startsWith(root + path.sep)) {
    throw new PathOutsideDataRootError(
      `path "${p}" resolves to ${real}, outside the data root ${root}: put it under BATCHPILOT_DATA_DIR or set BATCHPILOT_DATA_DIR to a folder that contains it`,
    );
  }
  return real;
}
