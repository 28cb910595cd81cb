// Layout of a job's intermediate files under `<outDir>/.batchpilot/`: one place that names them.
//   round-<r>/shard-NNNNN.jsonl    the unit's request lines as uploaded
//   round-1/shard-NNNNN.lines      Uint32LE input line number per line (written by the planner)
//   round-<r>/shard-NNNNN.origin   Uint32LE pairs (original shard, line index) for retry rounds
//   round-<r>/manifest.json        the round's units
//   outcomes/shard-NNNNN/r<r>-u<m>.jsonl  classified results for lines of original shard N
//   final/shard-NNNNN.jsonl        each line's last outcome, in shard order (merge)
//   job.json                       which job owns the folder (common/job-record.ts)
//   run/                           `batchpilot run`'s lock and embedded server state
import fsp from 'node:fs/promises';
import path from 'node:path';
import { RUN_DIR_NAME, jobRecordFile, workDirOf } from '../common/job-record.ts';
import { shardFileName } from '../common/keys.ts';

export { workDirOf };

export function roundDir(workDir: string, round: number): string {
  return path.join(workDir, `round-${round}`);
}

export function unitFile(workDir: string, round: number, index: number): string {
  return path.join(roundDir(workDir, round), shardFileName(index));
}

export function lineNumbersFile(workDir: string, index: number): string {
  return unitFile(workDir, 1, index).replace(/\.jsonl$/, '.lines');
}

export function originFile(workDir: string, round: number, index: number): string {
  return unitFile(workDir, round, index).replace(/\.jsonl$/, '.origin');
}

export function outcomeDir(workDir: string, shard: number): string {
  return path.join(workDir, 'outcomes', shardFileName(shard).replace(/\.jsonl$/, ''));
}

export function outcomeFile(workDir: string, shard: number, round: number, unit: number): string {
  return path.join(outcomeDir(workDir, shard), `r${round}-u${unit}.jsonl`);
}

export function collectedDir(workDir: string): string {
  return path.join(workDir, 'outcomes', 'collected');
}

/** Written after a unit's outcomes are safe: a re-run of the job skips the unit. */
export function collectedMarker(workDir: string, round: number, unit: number): string {
  return path.join(collectedDir(workDir), `r${round}-u${unit}.json`);
}

/** The plan's summary, kept so that a resumed job need not read its input again. */
export function planFile(workDir: string): string {
  return path.join(workDir, 'plan.json');
}

/** Which job owns the work directory (written by the plan step). */
export function ownerFile(workDir: string): string {
  return jobRecordFile(path.dirname(workDir));
}

/**
 * Removes the job's intermediate files. `run/` always stays (a running `batchpilot run` holds its
 * lock and server database there); the job record stays with `keepRecord`, so that the same
 * command later reports the finished job instead of starting it again.
 */
export async function clearWorkDir(workDir: string, keepRecord: boolean): Promise<void> {
  const keep = new Set([RUN_DIR_NAME, ...(keepRecord ? [path.basename(ownerFile(workDir))] : [])]);
  const entries = await fsp.readdir(workDir).catch(() => [] as string[]);
  for (const e of entries) {
    if (!keep.has(e)) await fsp.rm(path.join(workDir, e), { recursive: true, force: true });
  }
}

export function finalDir(workDir: string): string {
  return path.join(workDir, 'final');
}

export function finalFile(workDir: string, shard: number): string {
  return path.join(finalDir(workDir), shardFileName(shard));
}
