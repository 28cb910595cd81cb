// The job's state carried across continue-as-new, and the pure bookkeeping on it: fresh units, a
// shard's result or failure applied, progress as the query and the Web UI show it.
import { log, setCurrentDetails } from '@temporalio/workflow';
import type {
  FailureInfo,
  JobInput,
  JobProgress,
  PlanSummary,
  ProviderLookup,
  UnitProgress,
  UnitResult,
} from '../common/job-types.ts';
import { deadlineView, type DeadlineState } from '../common/deadline.ts';
import type { UnitTokens } from '../common/tokens.ts';
import { applyDeadlineResult } from './deadline-accounting.ts';
import { batchFailureCodes, batchFailureInfos, failureFromError, unitName } from './failures.ts';
import { progressTable } from './progress.ts';

/** Everything the job carries across continue-as-new: small, references only. */
export interface JobState {
  startedAt: string;
  notBefore: number;
  plan?: PlanSummary;
  round: number;
  units: UnitProgress[];
  batches: number;
  /** Lines settled in earlier rounds (the current round's units hold the rest). */
  settled: { succeeded: number; failed: number };
  /** Failed batches, one entry per batch (counted by code in the summary). */
  batchFailures: { round: number; shard: number; batchId: string | null; codes?: string[] }[];
  childFailures: string[];
  cancelled: boolean;
  /** Why things failed, structured (absent in states carried from older runs). */
  failures?: FailureInfo[];
  /** Round-1 shards that failed, by index: the reason their unsubmitted lines carry. */
  shardFailures?: Record<string, FailureInfo>;
  unavailableLookups?: ProviderLookup[];
  /** Batches refused for the enqueued-token limit that units waited out and sent again. */
  tokenLimitWaits?: number;
  /**
   * Units of the current round whose shard workflow has started and not reported its end, by
   * index: the next run re-attaches them by their workflow ids. Absent in jobs whose runs drain
   * their children before continuing as new.
   */
  inFlight?: number[];
  /** `--deadline`: its instant, the planned switch to Batch Chat, and the switch once made. */
  deadline?: DeadlineState;
}

/** One run of the job: its input (completed by the plan), state, id and phase. */
export interface JobRun {
  input: JobInput;
  state: JobState;
  jobId: string;
  phase: JobProgress['phase'];
  /** Signals this run has received (Temporal refuses more than 10,000 per run). */
  signals: number;
  /** Set when a unit settles, so the window wakes to launch the next. */
  changed: boolean;
  /** What the window does when a unit settles (frees its room). */
  onSettled?: (unit: UnitProgress) => void;
  /** This run's timer towards the deadline's switch (workflows/job-deadline.ts). */
  deadlineClock?: { timerAt?: number; woke: boolean };
}

/** A new job's state, before planning. */
export function initialState(startTime: Date): JobState {
  return {
    startedAt: new Date(startTime).toISOString(),
    notBefore: Math.floor(startTime.getTime() / 1000),
    round: 1,
    units: [],
    batches: 0,
    settled: { succeeded: 0, failed: 0 },
    batchFailures: [],
    childFailures: [],
    cancelled: false,
  };
}

/** Failures kept in state and the summary: enough to act on, bounded for history's sake. */
const MAX_FAILURES = 50;

export function addFailure(state: JobState, f: FailureInfo): void {
  state.failures ??= [];
  if (state.failures.length < MAX_FAILURES) state.failures.push(f);
}

/** A round's units, all pending; `tokens` (model and estimate per unit) where known. */
export function freshUnits(round: number, lines: number[], tokens?: UnitTokens[]): UnitProgress[] {
  return lines.map((n, index) => {
    const t = tokens?.[index];
    return {
      round,
      index,
      status: 'pending',
      batchId: null,
      lines: n,
      completed: 0,
      succeeded: 0,
      failed: 0,
      retry: 0,
      ...(t?.model ? { model: t.model, tokens: t.tokens } : {}),
    };
  });
}

/** What the `progress` query returns. */
export function jobProgress(run: JobRun): JobProgress {
  const { state, input } = run;
  const cur = state.units.reduce((a, u) => ({ s: a.s + u.succeeded, f: a.f + u.failed, r: a.r + u.retry }), {
    s: 0,
    f: 0,
    r: 0,
  });
  return {
    workflowId: run.jobId,
    phase: run.phase,
    round: state.round,
    input: input.input,
    outDir: input.outDir,
    models: state.plan?.models ?? [],
    lines: {
      total: state.plan?.lines ?? 0,
      valid: state.plan?.valid ?? 0,
      rejected: state.plan?.rejected ?? 0,
      succeeded: state.settled.succeeded + cur.s,
      failed: state.settled.failed + cur.f,
      pendingRetry: cur.r,
    },
    shards: state.units,
    batchesCreated: state.batches,
    startedAt: state.startedAt,
    ...(state.failures?.length ? { failures: state.failures } : {}),
    ...providerOutage(state.units),
    ...(state.tokenLimitWaits ? { tokenLimitWaits: state.tokenLimitWaits } : {}),
    ...(state.deadline ? { deadline: deadlineView(state.deadline) } : {}),
  };
}

/** The job at a glance in the Temporal Web UI. */
export function showProgress(run: JobRun): void {
  setCurrentDetails(progressTable(jobProgress(run)));
}

/** The longest-running outage among the units, for progress. */
function providerOutage(units: UnitProgress[]): Pick<JobProgress, 'providerUnreachable'> {
  let worst: UnitProgress['unreachable'];
  for (const u of units)
    if (u.unreachable && (!worst || u.unreachable.since < worst.since)) worst = u.unreachable;
  return worst ? { providerUnreachable: worst } : {};
}

/** A failed child: what the provider said, unwrapped from the child and activity wrappers. */
export function recordChildFailure(state: JobState, unit: UnitProgress, err: unknown): void {
  recordUnitFailure(state, unit, failureFromError(err, unitName(unit)));
}

/** A unit that failed for `f`: counted against the job, and the reason its lines carry. */
export function recordUnitFailure(state: JobState, unit: UnitProgress, f: FailureInfo): void {
  state.childFailures.push(`${f.unit}: ${f.message}`);
  addFailure(state, f);
  if (unit.round === 1) {
    state.shardFailures ??= {};
    state.shardFailures[String(unit.index)] = f;
  }
  log.warn('shard failed', { unit: f.unit, code: f.code, message: f.message });
}

/** A shard's result: its unit's counts, batch and failures. */
export function applyResult(state: JobState, r: UnitResult): void {
  const unit = state.units[r.unit.index]!;
  if (r.batchId && !unit.batchId) state.batches++;
  unit.status = r.batchStatus === 'cancelled' || r.batchStatus === null ? 'cancelled' : 'done';
  unit.batchId = r.batchId;
  unit.succeeded = r.succeeded;
  unit.failed = r.failed;
  unit.retry = r.retry;
  unit.completed = r.succeeded + r.failed + r.retry;
  delete unit.unreachable;
  if (r.tokenLimitWaits) state.tokenLimitWaits = (state.tokenLimitWaits ?? 0) + r.tokenLimitWaits;
  applyDeadlineResult(state.deadline, unit, r);
  const codes = batchFailureCodes(r);
  if (codes.length > 0) {
    state.batchFailures.push({ round: r.unit.round, shard: r.unit.index, batchId: r.batchId, codes });
    for (const f of batchFailureInfos(r)) addFailure(state, f);
  }
  for (const l of r.unavailableLookups ?? []) {
    state.unavailableLookups ??= [];
    if (!state.unavailableLookups.includes(l)) {
      state.unavailableLookups.push(l);
      log.warn('provider lookup unavailable', { lookup: l });
    }
  }
}
