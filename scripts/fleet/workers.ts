// `batchpilot worker` processes for the fleet, configured exactly as docker-compose.yml configures its
// worker service: the same variable names (test/unit/docker-compose.test.ts compares them), nothing
// inherited from the caller's own batchpilot or Temporal settings.
import path from 'node:path';
import { CONFIG_VARIABLES } from '../../common/config.ts';
import { FLEET_DIR } from './binaries.ts';
import { anyFreePort } from './ports.ts';
import { startProcess, type FleetProcess } from './processes.ts';
import { FLEET_NAMESPACE } from './temporal.ts';

const BATCHPILOT = path.join(FLEET_DIR, '..', '..', 'bin', 'batchpilot.ts');
/** The worker's command line after the program, as in compose's `command:`. */
export const WORKER_COMMAND = ['worker'];

export interface WorkerSettings {
  temporalAddress: string;
  taskQueue: string;
  /** The data root (a shared folder on one machine; compose mounts a volume). */
  dataDir: string;
  provider: string;
  baseUrl?: string;
  apiKey?: string;
  logLevel?: string;
  /** BATCHPILOT_MAX_IN_FLIGHT: the cap on provider batches across the fleet. */
  maxInFlight?: number;
  /** A prebuilt workflow bundle (scripts/bundle-workflows.ts) so a worker starts in a second. */
  workflowBundle?: string;
  /** More variables for this worker (e.g. object storage settings), beside compose's. */
  extraEnv?: Record<string, string>;
}

export function workerEnvironment(s: WorkerSettings, metricsPort: number): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: s.temporalAddress,
    TEMPORAL_NAMESPACE: FLEET_NAMESPACE,
    BATCHPILOT_TASK_QUEUE: s.taskQueue,
    BATCHPILOT_DATA_DIR: s.dataDir,
    BATCHPILOT_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
    LOG_LEVEL: s.logLevel ?? 'info',
    BATCHPILOT_PROVIDER: s.provider,
    ...(s.baseUrl ? { BATCHPILOT_BASE_URL: s.baseUrl } : {}),
    ...(s.apiKey ? { BATCHPILOT_API_KEY: s.apiKey } : {}),
    ...(s.maxInFlight ? { BATCHPILOT_MAX_IN_FLIGHT: String(s.maxInFlight) } : {}),
    ...(s.workflowBundle ? { BATCHPILOT_WORKFLOW_BUNDLE: s.workflowBundle } : {}),
  };
}

export interface FleetWorker extends FleetProcess {
  metricsUrl: string;
}

export async function startWorker(name: string, s: WorkerSettings, logDir: string): Promise<FleetWorker> {
  const metricsPort = await anyFreePort();
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !CONFIG_VARIABLES.includes(k) && !k.startsWith('TEMPORAL_')),
  );
  const proc = startProcess(name, process.execPath, [BATCHPILOT, ...WORKER_COMMAND], logDir, {
    env: { ...inherited, ...workerEnvironment(s, metricsPort), ...s.extraEnv },
  });
  return Object.assign(proc, { metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` });
}
