// Layout of a job's intermediate files under `<outDir>/.batchpilot/`: one place that names them.
//   round-<r>/shard-NNNNN.jsonl    the unit's request lines as uploaded
//   round-1/shard-NNNNN.lines      Uint32LE input line number per line (written by the planner)
//   round-<r>/shard-NNNNN.origin   Uint32LE pairs (original shard, line index) for retry rounds
//   round-<r>/manifest.json        the round's units
//   outcomes/shard-NNNNN/r<r>-u<m>.jsonl  classified results for lines of original shard N
//   final/shard-NNNNN.jsonl        each line's last outcome, in shard order (merge)
import path from 'node:path';
import { shardFileName } from '../common/keys.ts';

export const WORK_DIR_NAME = '.batchpilot';

export function workDirOf(outDir: string): string {
  return path.join(outDir, WORK_DIR_NAME);
}

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

/** Written after a unit's outcomes are safe: a re-run of the job skips the unit. */
export function collectedMarker(workDir: string, round: number, unit: number): string {
  return path.join(workDir, 'outcomes', 'collected', `r${round}-u${unit}.json`);
}

/** Which job owns the work directory: another job id starts it afresh. */
export function ownerFile(workDir: string): string {
  return path.join(workDir, 'job.json');
}

export function finalFile(workDir: string, shard: number): string {
  return path.join(workDir, 'final', shardFileName(shard));
}
