// Finds the `temporal` CLI binary: TEMPORAL_CLI_PATH, `temporal` on PATH, the
// project's tools cache (filled by scripts/setup.sh). The SDK's own download needs internet and is
// the caller's last resort.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TEMPORAL_CLI_VERSION = '1.5.1';

export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TEMPORAL_CLI_PATH) return env.TEMPORAL_CLI_PATH;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'temporal');
    if (dir && isExecutable(candidate)) return candidate;
  }
  const cache = env.BATCHPILOT_CACHE ?? path.join(os.homedir(), '.cache', 'batchpilot');
  const cached = path.join(cache, `temporal-${TEMPORAL_CLI_VERSION}`, 'temporal');
  return isExecutable(cached) ? cached : undefined;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
