// Every name under a job's output folder, in one place: the outputs users read and the work folder
// `<out>/.batchpilot/` that connects planner, collection, retry rounds and merge. Nothing else
// joins these paths. docs/on-disk.md describes the layout and formats.
//
//   <out>/results.jsonl, errors.jsonl, rejected.jsonl, manifest.json, summary.json, results.csv
//   <out>/.batchpilot/
//     job.json                              which job owns the folder (common/job-record.ts)
//     plan.json                             the plan's summary, so a resumed job skips planning
//     round-<r>/shard-NNNNN.jsonl           a unit's request lines as uploaded
//     round-1/shard-NNNNN.lines             Uint32LE input line number per line (the planner's)
//     round-<r>/shard-NNNNN.origin          Uint32LE pairs (original shard, line index), r ≥ 2
//     round-<r>/manifest.json               the round's units (storage/manifest.ts); written last
//     round-1/rejected.jsonl                input lines the planner refused
//     round-1/reused.jsonl, reused.lines    lines answered from earlier jobs, as final outcome records
//     answers.json                          whether collection stores this job's answers (reuse)
//     outcomes/shard-NNNNN/r<r>-u<m>.jsonl  classified results for lines of original shard N
//     outcomes/collected/r<r>-u<m>.json     a collected unit's counts: its outcomes are complete
//     final/shard-NNNNN.jsonl               each line's last outcome, in shard order (merge)
//     merge/fan-<f>/pass-<p>/run-NNNNN.*    object storage, many shards: the merge's intermediate
//                                           runs (.jsonl, .lines, .json when complete)
//     chat/r<r>-u<m>.jsonl                  Batch Chat answers of a unit, appended as they come
//     creates/<file name>.sending           a batch create under way (providers that cannot list)
//     run/                                  `batchpilot run`'s lock and embedded server state
//
// Each path is a key under the work folder (`workKey`) joined to a local root, so a store other
// than a local folder can use the same keys (docs/on-disk.md, "A second storage").
import fsp from 'node:fs/promises';
import path from 'node:path';
import { unitFileName } from '../common/keys.ts';

export const WORK_DIR_NAME = '.batchpilot';
/** Kept when the rest of the work folder is cleared: what `run` needs across interruptions. */
export const RUN_DIR_NAME = 'run';
export const JOB_RECORD_NAME = 'job.json';
export const MANIFEST_NAME = 'manifest.json';
export const REJECTED_NAME = 'rejected.jsonl';
/** Round 1's lines answered from earlier jobs (outcome records) and their input line numbers. */
export const REUSED_NAME = 'reused.jsonl';
export const REUSED_LINES_NAME = 'reused.lines';

/** The files a finished job leaves in its output folder (results.csv only when asked for). */
export const OUTPUT_NAMES = {
  results: 'results.jsonl',
  errors: 'errors.jsonl',
  rejected: REJECTED_NAME,
  manifest: MANIFEST_NAME,
  summary: 'summary.json',
  resultsCsv: 'results.csv',
} as const;
export type OutputName = keyof typeof OUTPUT_NAMES;

/** The outputs `results`…`summary`, in the order the CLI lists them. */
export const JOB_OUTPUTS: readonly OutputName[] = ['results', 'errors', 'rejected', 'summary', 'manifest'];

export function outputFile(outDir: string, name: OutputName): string {
  return path.join(outDir, OUTPUT_NAMES[name]);
}

export function workDirOf(outDir: string): string {
  return path.join(outDir, WORK_DIR_NAME);
}

export function jobRecordFile(outDir: string): string {
  return path.join(workDirOf(outDir), JOB_RECORD_NAME);
}

/** Which job owns the work folder, seen from the work folder. */
export function ownerFile(workDir: string): string {
  return path.join(workDir, JOB_RECORD_NAME);
}

/** Where `run` keeps its lock and the embedded Temporal server's database. */
export function runDirOf(outDir: string): string {
  return path.join(workDirOf(outDir), RUN_DIR_NAME);
}

export function runLockFile(outDir: string): string {
  return path.join(runDirOf(outDir), 'lock');
}

export function embeddedServerDb(outDir: string): string {
  return path.join(runDirOf(outDir), 'temporal.db');
}

// ---- names inside a round folder (the planner writes round 1 and `batchpilot plan --out`) -------

/** `shard-00042`: a unit's base name; its request lines, sidecars and final file share it. */
export function shardBaseName(index: number): string {
  return `shard-${String(index).padStart(5, '0')}`;
}

export function shardFileName(index: number): string {
  return `${shardBaseName(index)}.jsonl`;
}

export function lineNumbersFileName(index: number): string {
  return `${shardBaseName(index)}.lines`;
}

export function originFileName(index: number): string {
  return `${shardBaseName(index)}.origin`;
}

/**
 * The files of one round folder, wherever it is: a job's `round-<r>/`, a retry round while it is
 * built, or `batchpilot plan --out <dir>`.
 */
export function roundFiles(dir: string) {
  return {
    unit: (index: number): string => path.join(dir, shardFileName(index)),
    lineNumbers: (index: number): string => path.join(dir, lineNumbersFileName(index)),
    origin: (index: number): string => path.join(dir, originFileName(index)),
    manifest: (): string => path.join(dir, MANIFEST_NAME),
    rejected: (): string => path.join(dir, REJECTED_NAME),
    reused: (): string => path.join(dir, REUSED_NAME),
    reusedLines: (): string => path.join(dir, REUSED_LINES_NAME),
  };
}

/** A file the planner writes into a round folder (a shard, its sidecar, the manifest, rejected lines). */
export function isPlanOutputName(name: string): boolean {
  return (
    /^shard-\d{5,}\.(jsonl|lines)$/.test(name) ||
    [MANIFEST_NAME, REJECTED_NAME, REUSED_NAME, REUSED_LINES_NAME].includes(name)
  );
}

// ---- keys under the work folder -----------------------------------------------------------------

const outcomeName = (round: number, unit: number): string => `r${round}-u${unit}`;

/** Keys (relative, `/`-separated) of the work folder's files: the same for any store. */
export const workKey = {
  plan: (): string => 'plan.json',
  round: (round: number): string => `round-${round}`,
  unit: (round: number, index: number): string => `round-${round}/${shardFileName(index)}`,
  lineNumbers: (index: number): string => `round-1/${lineNumbersFileName(index)}`,
  origin: (round: number, index: number): string => `round-${round}/${originFileName(index)}`,
  roundManifest: (round: number): string => `round-${round}/${MANIFEST_NAME}`,
  rejected: (): string => `round-1/${REJECTED_NAME}`,
  reused: (): string => `round-1/${REUSED_NAME}`,
  reusedLines: (): string => `round-1/${REUSED_LINES_NAME}`,
  /** Whether and where collection stores this job's answers (written by the plan). */
  answers: (): string => 'answers.json',
  outcomes: (shard: number): string => `outcomes/${shardBaseName(shard)}`,
  outcome: (shard: number, round: number, unit: number): string =>
    `outcomes/${shardBaseName(shard)}/${outcomeName(round, unit)}.jsonl`,
  collected: (): string => 'outcomes/collected',
  collectedMarker: (round: number, unit: number): string =>
    `outcomes/collected/${outcomeName(round, unit)}.json`,
  final: (): string => 'final',
  finalShard: (shard: number): string => `final/${shardFileName(shard)}`,
  /** The merge's intermediate runs (object storage, when the shards are more than it reads at once). */
  mergeRuns: (): string => 'merge',
  /**
   * Run `index` of pass `pass` of a merge that reads `fanIn` inputs at once: its outcome records,
   * their input line numbers (Uint32LE, as a shard's `.lines`) and its counts, written last.
   */
  mergeRun: (fanIn: number, pass: number, index: number) => {
    const base = `merge/fan-${fanIn}/pass-${pass}/run-${String(index).padStart(5, '0')}`;
    return { lines: `${base}.jsonl`, numbers: `${base}.lines`, done: `${base}.json` };
  },
  chatResults: (round: number, unit: number): string => `chat/${outcomeName(round, unit)}.jsonl`,
  /** The provider-side file name of the unit (its idempotency key made safe) marks the create. */
  sending: (key: string): string => `creates/${unitFileName(key)}.sending`,
} as const;

const at = (workDir: string, key: string): string => path.join(workDir, ...key.split('/'));

export const planFile = (workDir: string): string => at(workDir, workKey.plan());
export const roundDir = (workDir: string, round: number): string => at(workDir, workKey.round(round));
/** Where a retry round is built before it is renamed to its round folder in one step. */
export const roundBuildDir = (workDir: string, round: number): string => `${roundDir(workDir, round)}.tmp`;
export const unitFile = (workDir: string, round: number, index: number): string =>
  at(workDir, workKey.unit(round, index));
export const lineNumbersFile = (workDir: string, index: number): string =>
  at(workDir, workKey.lineNumbers(index));
export const originFile = (workDir: string, round: number, index: number): string =>
  at(workDir, workKey.origin(round, index));
export const roundManifestFile = (workDir: string, round: number): string =>
  at(workDir, workKey.roundManifest(round));
export const rejectedFile = (workDir: string): string => at(workDir, workKey.rejected());
export const reusedFile = (workDir: string): string => at(workDir, workKey.reused());
export const reusedLinesFile = (workDir: string): string => at(workDir, workKey.reusedLines());
export const answersSettingsFile = (workDir: string): string => at(workDir, workKey.answers());
export const outcomeDir = (workDir: string, shard: number): string => at(workDir, workKey.outcomes(shard));
export const outcomeFile = (workDir: string, shard: number, round: number, unit: number): string =>
  at(workDir, workKey.outcome(shard, round, unit));
export const collectedDir = (workDir: string): string => at(workDir, workKey.collected());
/** Written after a unit's outcomes are safe: a re-run of the job skips the unit. */
export const collectedMarker = (workDir: string, round: number, unit: number): string =>
  at(workDir, workKey.collectedMarker(round, unit));
export const finalDir = (workDir: string): string => at(workDir, workKey.final());
export const finalFile = (workDir: string, shard: number): string => at(workDir, workKey.finalShard(shard));
export const chatResultsFile = (workDir: string, round: number, unit: number): string =>
  at(workDir, workKey.chatResults(round, unit));
export const sendingMarker = (workDir: string, key: string): string => at(workDir, workKey.sending(key));

// ---- listings: the few places that enumerate instead of naming -----------------------------------

/** A file named for a (round, unit): an outcome file or a collected marker. */
export interface RoundUnitFile {
  round: number;
  unit: number;
  file: string;
}

async function listRoundUnit(dir: string, ext: string): Promise<RoundUnitFile[]> {
  const pattern = new RegExp(`^r(\\d+)-u(\\d+)\\.${ext}$`);
  const out: RoundUnitFile[] = [];
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const m = pattern.exec(name);
    if (m) out.push({ round: Number(m[1]), unit: Number(m[2]), file: path.join(dir, name) });
  }
  return out.sort((a, b) => a.round - b.round || a.unit - b.unit);
}

/** Outcome files of original shard `shard`, by round then unit: a later one overrides an earlier. */
export function outcomeFilesOf(workDir: string, shard: number): Promise<RoundUnitFile[]> {
  return listRoundUnit(outcomeDir(workDir, shard), 'jsonl');
}

/** Every collected unit's marker, by round then unit. */
export function collectedMarkers(workDir: string): Promise<RoundUnitFile[]> {
  return listRoundUnit(collectedDir(workDir), 'json');
}

/** The round folders present, newest first. */
export async function roundsOnDisk(workDir: string): Promise<number[]> {
  return (await fsp.readdir(workDir).catch(() => [] as string[]))
    .map((e) => /^round-(\d+)$/.exec(e)?.[1])
    .filter((r): r is string => r !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
}

/**
 * Removes the job's intermediate files. `run/` always stays (a running `batchpilot run` holds its
 * lock and server database there); the job record stays with `keepRecord`, so that the same
 * command later reports the finished job instead of starting it again.
 */
export async function clearWorkDir(workDir: string, keepRecord: boolean): Promise<void> {
  const keep = new Set([RUN_DIR_NAME, ...(keepRecord ? [JOB_RECORD_NAME] : [])]);
  const entries = await fsp.readdir(workDir).catch(() => [] as string[]);
  for (const e of entries) {
    if (!keep.has(e)) await fsp.rm(path.join(workDir, e), { recursive: true, force: true });
  }
}
