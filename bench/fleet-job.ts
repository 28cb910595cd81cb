// One job on the fleet of `scripts/fleet/` as a user runs it, for the benchmarks that compare whole
// jobs (object path against local disk; reuse against no reuse): fresh `batchpilot worker`
// processes configured by environment, each with a scratch folder of its own, the job started with
// `batchpilot start --wait`, its wall time from `start` to exit, and each worker's peak RSS.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { JobSummary } from '../common/job-types.ts';
import type { Fleet } from '../scripts/fleet/fleet.ts';
import type { FleetWorker } from '../scripts/fleet/workers.ts';
import { ROOT } from './util.ts';

/** The worker's local scratch folder setting. */
const SCRATCH_VARIABLE = 'BATCHPILOT_SCRATCH_DIR';

/** Peak resident set of a running process (VmHWM), MB. */
function peakRssOf(pid: number | undefined): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return kb ? Number(kb[1]) / 1024 : NaN;
}

function batchpilot(env: Record<string, string>, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin', 'batchpilot.ts'), ...args],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env },
        maxBuffer: 64 << 20,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err.code as number) ?? 1) : 0, out: `${stdout}\n${stderr}` }),
    ),
  );
}

export interface FleetJobResult {
  wallMs: number;
  summary: JobSummary;
  workerPeakMB: number[];
}

/** Starts `workers` workers, runs the job with `batchpilot start --wait`, stops them. */
export async function runFleetJob(
  fleet: Fleet,
  opts: {
    name: string;
    taskQueue: string;
    workers: number;
    dataDir: string;
    extraEnv: Record<string, string>;
    input: string;
    out: string;
    maxLines: number;
    /** More `start` flags (e.g. `--no-reuse`). */
    args?: string[];
    readSummary: () => Promise<JobSummary>;
  },
): Promise<FleetJobResult> {
  const ws: FleetWorker[] = [];
  for (let i = 1; i <= opts.workers; i++) {
    const scratch = path.join(fleet.root, `${opts.name}-scratch-${i}`);
    fs.mkdirSync(scratch, { recursive: true });
    ws.push(
      await fleet.startWorker(`${opts.name}-worker-${i}`, {
        taskQueue: opts.taskQueue,
        dataDir: opts.dataDir,
        // Each worker its own scratch folder, as on machines of their own.
        extraEnv: { ...opts.extraEnv, [SCRATCH_VARIABLE]: scratch },
      }),
    );
  }
  // A worker polls within a second or two of starting; the job's clock starts at `start`.
  await new Promise((r) => setTimeout(r, 3000));
  const t0 = performance.now();
  const res = await batchpilot(
    {
      TEMPORAL_ADDRESS: fleet.temporal.address,
      TEMPORAL_NAMESPACE: fleet.temporal.namespace,
      BATCHPILOT_TASK_QUEUE: opts.taskQueue,
      ...opts.extraEnv,
    },
    [
      'start',
      opts.input,
      '--out',
      opts.out,
      '--id',
      `bench-${opts.name}-${Date.now()}`,
      '--max-lines',
      String(opts.maxLines),
      '--poll-interval',
      '1s',
      ...(opts.args ?? []),
      '--wait',
    ],
  );
  const wallMs = performance.now() - t0;
  if (res.code !== 0)
    throw new Error(`${opts.name} job: exit ${res.code}\n${res.out}\n${ws.map((w) => w.tail()).join('\n')}`);
  const workerPeakMB = ws.map((w) => peakRssOf(w.child.pid));
  for (const w of ws) await w.stop();
  return { wallMs, summary: await opts.readSummary(), workerPeakMB };
}
