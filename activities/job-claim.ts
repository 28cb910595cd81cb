// Who may write an output folder: the job recorded in `<out>/.batchpilot/job.json`. A start with the
// same id and the same fingerprint resumes it; a changed input or changed options, or another job
// while the owner runs or before it is given up with --force, fail at once with what to do.
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  fingerprintDiff,
  parseJobRecord,
  type JobFingerprint,
  type JobRecord,
} from '../common/job-record.ts';
import type { PlanSummary } from '../common/job-types.ts';
import {
  collectedMarkers,
  JOB_RECORD_NAME,
  MANIFEST_NAME,
  roundsOnDisk,
  WORK_DIR_NAME,
  workKey,
} from '../storage/layout.ts';
import { readRoundManifest } from '../storage/manifest.ts';
import { readText } from '../storage/store.ts';
import { clearWork, type Workspace } from '../storage/workspace.ts';
import { readCollectedMarker } from '../storage/records.ts';

const RECORD_KEY = `${WORK_DIR_NAME}/${JOB_RECORD_NAME}`;

export interface ClaimInput {
  /** The job's work folder, through its store (job.json is read and written there). */
  ws: Workspace;
  jobId: string;
  fingerprint: JobFingerprint;
  /** --force: the folder's earlier job is given up and this one starts afresh. */
  force: boolean;
  /** The worker's Temporal client, to tell whether the folder's owner still runs. */
  client?: Client;
}

async function ownerStatus(client: Client | undefined, jobId: string): Promise<string> {
  if (!client) return 'unknown';
  try {
    return (await client.workflow.getHandle(jobId).describe()).status.name;
  } catch {
    return 'unknown';
  }
}

/** Claims the work folder for this job: 'new' (fresh start) or 'resumed' (its own earlier state). */
export async function claimWorkDir(c: ClaimInput): Promise<'new' | 'resumed'> {
  for (;;) {
    const claimed = await tryClaim(c);
    if (claimed) return claimed;
  }
}

/** One look at the owner and one claim; undefined when another job claimed the folder meanwhile. */
async function tryClaim(c: ClaimInput): Promise<'new' | 'resumed' | undefined> {
  const store = c.ws.store;
  const outDir = store.root;
  const recordText = await readText(store, RECORD_KEY);
  const owner = parseJobRecord(recordText);
  if (owner?.jobId === c.jobId) {
    const diff = fingerprintDiff(owner.fingerprint, c.fingerprint);
    if (diff.length > 0) {
      throw ApplicationFailure.nonRetryable(
        `job ${c.jobId} cannot resume in ${outDir}: ${diff.join('; ')}. Run it as it was started, or start a fresh job with --force (or another --out)`,
        'JobChanged',
      );
    }
    // A merge of an earlier run is stale once more units are collected: merge from scratch.
    await c.ws.remove(workKey.final());
    await c.ws.remove(workKey.mergeRuns());
    return 'resumed';
  }
  if (owner && !c.force) {
    const status = await ownerStatus(c.client, owner.jobId);
    if (status === 'RUNNING') {
      throw ApplicationFailure.nonRetryable(
        `${outDir} is being written by job ${owner.jobId}, which is running: watch it with "batchpilot watch ${owner.jobId}", or choose another --out`,
        'OutputFolderBusy',
      );
    }
    throw ApplicationFailure.nonRetryable(
      `${outDir} holds job ${owner.jobId} (${status.toLowerCase()}): resume it with the same command and --id ${owner.jobId}, start afresh with --force, or choose another --out`,
      'OutputFolderTaken',
    );
  }
  const record: JobRecord = {
    jobId: c.jobId,
    fingerprint: c.fingerprint,
    createdAt: new Date().toISOString(),
  };
  if (owner) {
    await clearWork(c.ws, false);
    await store.write(RECORD_KEY, JSON.stringify(record, null, 2) + '\n');
    return 'new';
  }
  // Two jobs starting on one empty folder at once: the second's write finds the first's record,
  // and it then sees the first as the owner.
  // A record without a fingerprint (written by an older batchpilot, or torn) owns nothing.
  const now = await readText(store, RECORD_KEY);
  if (now !== undefined && !parseJobRecord(now)) await store.delete(RECORD_KEY);
  if (!(await store.write(RECORD_KEY, JSON.stringify(record) + '\n', { ifAbsent: true }))) return undefined;
  await clearWork(c.ws, true);
  return 'new';
}

/**
 * Where a resumed job picks up: its last round that was packed (round 2 or later), with the lines
 * settled in the rounds before it. Undefined when the job never went past round 1.
 */
export async function resumePoint(ws: Workspace): Promise<PlanSummary['resumeAt']> {
  await ws.pullPrefix('round-', (k) => k.endsWith(`/${MANIFEST_NAME}`));
  await ws.pullPrefix(`${workKey.collected()}/`);
  const workDir = ws.dir;
  const rounds = (await roundsOnDisk(workDir)).filter((r) => r >= 2);
  for (const round of rounds) {
    const manifest = await readRoundManifest(workDir, round);
    if (!manifest) continue;
    const settled = { succeeded: 0, failed: 0 };
    for (const { round: r, file } of await collectedMarkers(workDir)) {
      if (!(r < round)) continue;
      const m = await readCollectedMarker(file);
      settled.succeeded += m.succeeded;
      settled.failed += m.failed;
    }
    return { round, unitLines: manifest.units.map((u) => u.lines), settled };
  }
  return undefined;
}
