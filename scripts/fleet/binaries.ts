// Where the fleet's programs are. Versions come from scripts/env.sh, the one place that names them
// (and the place scripts/fleet/build.sh builds from), so this works with or without sourcing it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findTemporalCli } from '../../worker/temporal-cli.ts';

export const FLEET_DIR = import.meta.dirname;
const ENV_SH = path.join(FLEET_DIR, '..', 'env.sh');

/** A `NAME=value` line of scripts/env.sh. */
export function envShValue(name: string): string {
  const m = new RegExp(`^${name}=(\\S+)$`, 'm').exec(fs.readFileSync(ENV_SH, 'utf8'));
  if (!m) throw new Error(`scripts/env.sh does not set ${name}`);
  return m[1]!;
}

export interface FleetBinaries {
  /** Folder holding temporal-server and temporal-sql-tool (the names Temporal's images use). */
  temporalServerDir: string;
  temporalServer: string;
  temporalSqlTool: string;
  temporalCli: string;
  versitygw: string;
  /** PostgreSQL's server programs (initdb, postgres, pg_isready). */
  postgresBin: string;
}

const BUILD_HINT = 'build it once with `BATCHPILOT_FLEET=1 bash scripts/setup.sh`';

export function mustExist(what: string, file: string, hint = BUILD_HINT): string {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return file;
  } catch {
    throw new Error(`${what} is missing at ${file}: ${hint}`);
  }
}

/** The newest PostgreSQL under /usr/lib/postgresql (Debian's layout), or BATCHPILOT_PG_BIN. */
function findPostgresBin(env: NodeJS.ProcessEnv): string {
  if (env.BATCHPILOT_PG_BIN) return env.BATCHPILOT_PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0])
    throw new Error(
      'PostgreSQL is not installed: apt-get install postgresql (Debian), or set BATCHPILOT_PG_BIN to its bin folder',
    );
  return path.join(root, versions[0], 'bin');
}

export function fleetBinaries(env: NodeJS.ProcessEnv = process.env): FleetBinaries {
  const cache = env.BATCHPILOT_CACHE ?? path.join(os.homedir(), '.cache', 'batchpilot');
  const server = envShValue('TEMPORAL_SERVER_VERSION').replace(/^v/, '');
  const versity = envShValue('VERSITYGW_VERSION').replace(/^v/, '');
  const temporalServerDir = path.join(cache, `temporal-server-${server}`);
  const cli = findTemporalCli(env);
  const postgresBin = findPostgresBin(env);
  mustExist('the PostgreSQL server', path.join(postgresBin, 'postgres'), 'apt-get install postgresql');
  return {
    temporalServerDir,
    temporalServer: mustExist(`Temporal server ${server}`, path.join(temporalServerDir, 'temporal-server')),
    temporalSqlTool: mustExist(
      `Temporal SQL tool ${server}`,
      path.join(temporalServerDir, 'temporal-sql-tool'),
    ),
    temporalCli: mustExist(
      'the Temporal CLI',
      cli ?? path.join(cache, 'temporal'),
      'run `bash scripts/setup.sh`',
    ),
    // Checked where it is started: a fleet without object storage does not need it.
    versitygw: path.join(cache, `versitygw-${versity}`, 'versitygw'),
    postgresBin,
  };
}
