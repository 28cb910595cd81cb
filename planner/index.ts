// The streaming validator and shard planner: one pass over an input of any size checks
// every line, reports each bad one with its line number and the fix, and packs the good ones into
// shard files the provider accepts. Both the job's plan activity and `batchpilot validate|plan`
// call planInput. How it is fast and bounded: plan.ts and README.md (threads, memory), scan.ts, ids.ts.
import { runPlan } from './plan.ts';
import type { PlanOptions, PlanReport, PlanTuning } from './types.ts';

export { InputError } from './errors.ts';
export type {
  LineReuse,
  PlanOptions,
  PlanProblem,
  PlanReport,
  PlanTuning,
  PlanWarning,
  ReuseReport,
  ShardInfo,
} from './types.ts';

/** Validates `opts.input` and, with `outDir`, writes its shards, manifest.json and rejected.jsonl. */
export async function planInput(opts: PlanOptions): Promise<PlanReport> {
  return runPlan(opts);
}

/** planInput with explicit threads, chunk size and memory caps (tests, bench). */
export async function planInputTuned(opts: PlanOptions, tuning: PlanTuning): Promise<PlanReport> {
  return runPlan(opts, tuning);
}
