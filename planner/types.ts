// The planner's public shapes (the job's plan activity and the CLI both use them).
import type { AnswerLookup } from '../storage/answers.ts';
import type { InputBytes } from './input-bytes.ts';
import type { ShardEntry } from '../storage/manifest.ts';

export interface PlanOptions {
  /** Absolute path (.jsonl, or .csv with `csv`), or with `inputBytes` the name of what they are. */
  input: string;
  /** The input's bytes when they are not the local file `input` (an object in a store). */
  inputBytes?: InputBytes;
  /** Absolute; where shard files, manifest.json and rejected.jsonl go; omit to validate only. */
  outDir?: string;
  /** The job's endpoint, e.g. '/v1/chat/completions': every line's url must equal it. */
  endpoint: string;
  limits: { maxLines: number; maxBytes: number; maxLineBytes: number };
  /** CSV conversion; `header: false` reads 1-based column positions from idColumn/promptColumn. */
  csv?: { header?: boolean; idColumn: string; promptColumn: string; model: string; system?: string };
  /** Dry run rewrites model and url; `thinking` sets body.enable_thinking on every line. */
  rewrite?: { model?: string; url?: string; thinking?: 'on' | 'off' | 'keep'; thinkingBudget?: number };
  /** Called about every second and at the end (the activity heartbeats with it). */
  onProgress?: (p: { bytesRead: number; linesRead: number }) => void;
  /** Cap on problems kept in the report (rejected.jsonl has them all); default 1000. */
  maxProblems?: number;
  /**
   * Called with a finished shard's file and its sidecar once both are complete and durable (hashed,
   * fsynced): a plan into scratch commits them to the store and drops them, so that its local
   * folder holds only the shards being written. Planning waits while more than one is pending, and
   * its end waits for all.
   */
  onShardDone?: (files: string[]) => Promise<void>;
  /** Answers of earlier jobs: a valid line it takes is not packed into a shard. */
  reuse?: LineReuse;
}

/**
 * Called for every valid line in input order, with the request key (common/request-key.ts, in
 * `scope`) of its bytes as they would be sent, computed on the scan threads:
 * key[at, at + KEY_BYTES). With `answerLookup`, the scan threads also read the stored answer of
 * each key: `stored` is its file's bytes, undefined when none is stored, null when the thread did
 * not look (the hook then does). Returns true when the line is answered from an earlier job (it
 * then goes into no shard). `finish` runs before the manifest is written, so what it commits is
 * in place when the plan folder is complete.
 */
export interface LineReuse {
  readonly scope: string;
  /** Where the scan threads may read stored answers themselves; called once, before they start. */
  answerLookup?(): AnswerLookup | undefined;
  take(
    line: number,
    key: Uint8Array,
    at: number,
    facts: LineFacts,
    stored: Uint8Array | undefined | null,
  ): boolean;
  finish(): ReuseReport;
}

/** What a reused line's outcome needs of it, decoded only when asked (most lines are not reused). */
export interface LineFacts {
  customId(): string;
  /** body.model as the line goes out. */
  model(): string;
}

/** Valid lines answered from earlier jobs, and the tokens those answers had cost (by model). */
export interface ReuseReport {
  lines: number;
  usageByModel: Record<string, { prompt_tokens: number; completion_tokens: number; total_tokens: number }>;
}

/** One shard of the plan, as round 1's manifest lists it (storage/manifest.ts). */
export type ShardInfo = ShardEntry;

export interface PlanProblem {
  line: number;
  code: string;
  message: string;
  custom_id?: string;
}

export interface PlanWarning {
  line: number;
  code: string;
  message: string;
}

export interface PlanReport {
  /** Request lines (blank lines not counted): lines = valid + rejected. */
  lines: number;
  valid: number;
  rejected: number;
  groups: { model: string; thinking: boolean | null; lines: number; bytes: number }[];
  shards: number;
  shardList: ShardInfo[];
  problems: PlanProblem[];
  warnings: PlanWarning[];
  /** With `reuse`: valid lines answered from earlier jobs (counted in `valid`, in no shard). */
  reused?: ReuseReport;
}

export interface CpuUsage {
  user: number;
  system: number;
}

/** Knobs for tests and the bench; planInput picks them from the input's size. */
export interface PlanTuning {
  /** Scan threads; 0 checks on the main thread. Default: 0 up to 16 MiB, 2 up to 2.5M lines, then 1. */
  workers?: number;
  /** Bytes read per chunk (raised to fit one line of maxLineBytes). Default 4 MiB. */
  chunkBytes?: number;
  /** Records per message from a scan thread. */
  partRecords?: number;
  /** Memory cap of the custom_id table. Default 128 MiB (about 18M distinct ids). */
  idTableBytes?: number;
  /** Test hook: keep only these bits of each custom_id's hash, to force collisions. */
  idHashMask?: number;
  /** Called at the end with the CPU time (µs) of each thread: the main one and the scan threads. */
  cpuReport?: (cpu: { main: CpuUsage; scan: CpuUsage[] }) => void;
  /** How many shard files stay open at once (the least recently used is closed and reopened). */
  maxOpenShards?: number;
}
