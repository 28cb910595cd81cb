// Renders the job's progress for people: a bar, line counts, shard states and an ETA.
import type { DeadlineView } from '../common/deadline.ts';
import type { FailureInfo, JobProgress, JobSummary } from '../common/job-types.ts';
import { formatDuration } from '../common/units.ts';

export function progressBar(fraction: number, width = 30): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${(f * 100).toFixed(1).padStart(5)}%`;
}

/**
 * Lines settled for good (answered, or failed with no attempt left) out of the lines to send. Lines
 * a running batch has answered are not counted yet: some may need another round, and the bar must
 * never move backwards.
 */
export function doneFraction(p: JobProgress): number {
  const l = p.lines;
  if (l.valid === 0) return p.phase === 'done' ? 1 : 0;
  return Math.min(1, (l.succeeded + l.failed) / l.valid);
}

/** Lines the provider reports as answered in batches still running or being collected. */
export function answeredInFlight(p: JobProgress): number {
  return p.shards.reduce((a, s) => a + (s.status === 'done' ? 0 : s.completed), 0);
}

/**
 * Linear ETA from the elapsed time and the fraction done; undefined until it means something: while
 * planning or cancelling, before 2% of the lines are done, or in the first 20 seconds.
 */
export function eta(p: JobProgress, now: number, f = doneFraction(p)): number | undefined {
  const elapsed = now - Date.parse(p.startedAt);
  if (p.phase !== 'running' || f < 0.02 || f >= 1 || !(elapsed >= 20_000)) return undefined;
  return (elapsed * (1 - f)) / f;
}

export function renderProgress(p: JobProgress, now = Date.now()): string {
  const byStatus = new Map<string, number>();
  for (const s of p.shards) byStatus.set(s.status, (byStatus.get(s.status) ?? 0) + 1);
  const shardText = [...byStatus].map(([k, v]) => `${v} ${k}`).join(', ') || 'none yet';
  const f = doneFraction(p);
  const inFlight = answeredInFlight(p);
  const e = eta(p, now, f);
  const l = p.lines;
  const counts = `${l.succeeded} ok, ${l.failed} failed, ${l.rejected} rejected of ${l.total} lines`;
  const nothingToSend = p.phase !== 'planning' && l.valid === 0;
  return [
    `${p.workflowId}  ${p.phase}  round ${p.round}`,
    nothingToSend
      ? `nothing to send: ${counts}`
      : `${progressBar(f)}  ${counts}${e !== undefined ? `  ETA ${formatDuration(e)}` : ''}`,
    `shards: ${shardText}   batches created: ${p.batchesCreated}${inFlight ? `   ${inFlight} answered in running batches` : ''}`,
    ...(p.tokenLimitWaits ? [`${tokenLimitText(p.tokenLimitWaits)} so far`] : []),
    ...(p.deadline ? [deadlineText(p.deadline)] : []),
  ].join('\n');
}

/** The deadline and its switch to Batch Chat, planned or made, in words. */
export function deadlineText(d: DeadlineView): string {
  if (d.switchedAt === null)
    return `deadline ${d.at}: batches running; switch to Batch Chat planned at ${d.plannedSwitchAt} if they are not done`;
  const why =
    d.reason === 'too close at start'
      ? 'too close at start to wait for batches: every line goes by Batch Chat'
      : 'running batches cancelled (their finished lines kept), the rest goes by Batch Chat';
  return `deadline ${d.at}: switched at ${d.switchedAt}, ${why}; ${d.linesViaChat} lines answered by chat so far`;
}

/** Batches refused for the provider's enqueued-token limit, in words. */
const tokenLimitText = (n: number): string =>
  `${n} batch${n === 1 ? '' : 'es'} refused for the enqueued-token limit waited and went again (no retry round spent)`;

/**
 * The job's end in words for people: `completed` only when every line got an answer,
 * `completed with failures` when some failed or were rejected, `failed` and `cancelled` as the
 * summary's status says. (summary.json keeps its status values for scripts.)
 */
export function outcomeWord(s: JobSummary): string {
  if (s.status !== 'completed') return s.status;
  return s.lines.failed > 0 || s.lines.rejected > 0 ? 'completed with failures' : 'completed';
}

/** The exit code of a job's end: 0 only when it completed with every line answered. */
export function exitCodeOf(s: JobSummary | undefined): number {
  return s && outcomeWord(s) === 'completed' ? 0 : 1;
}

/** One failure on one line: where, the provider's code and status, the call, the message. */
export function renderFailure(f: FailureInfo): string {
  // Most messages already begin with the call ("create batch: …"): it is not said twice.
  const call = f.call && !f.message.startsWith(`${f.call}`) ? f.call : undefined;
  const where = [f.unit, call].filter(Boolean).join(', ');
  const status = f.status_code !== undefined ? ` ${f.status_code}` : '';
  return `${where ? `${where}: ` : ''}[${f.code}${status}] ${f.message}`;
}

const FAILURES_SHOWN = 5;

/** Lines that say what is wrong now: an unreachable provider, failures so far. */
export function renderAlerts(p: JobProgress, now = Date.now()): string[] {
  const out: string[] = [];
  const u = p.providerUnreachable;
  if (u) {
    const min = Math.max(0, Math.floor((now - u.since) / 60_000));
    out.push(`provider unreachable at ${u.url} for ${min} min (retrying): ${u.message}`);
  }
  for (const f of (p.failures ?? []).slice(0, FAILURES_SHOWN)) out.push(`failure: ${renderFailure(f)}`);
  return out;
}

export function renderSummary(s: JobSummary): string {
  const l = s.lines;
  const failures = s.failures ?? [];
  return [
    `job ${s.workflowId} ${outcomeWord(s)}`,
    `  lines: ${l.total} total, ${l.succeeded} succeeded, ${l.failed} failed, ${l.rejected} rejected`,
    `  shards: ${s.shards}, batches: ${s.batches}, rounds: ${s.rounds}`,
    `  tokens: ${s.usage.prompt_tokens} prompt + ${s.usage.completion_tokens} completion = ${s.usage.total_tokens}`,
    ...Object.entries(s.usageByModel ?? {}).map(
      ([m, u]) => `    ${m}: ${u.prompt_tokens} prompt + ${u.completion_tokens} completion`,
    ),
    ...(s.cost
      ? [
          `  cost: ${s.cost.total} ${s.cost.currency} at the batch discount${s.cost.unpriced.length ? ` (no price for ${s.cost.unpriced.join(', ')})` : ''}`,
        ]
      : []),
    `  outputs in ${s.outDir}: results.jsonl, errors.jsonl, rejected.jsonl, summary.json, manifest.json`,
    ...(s.batchFailures && Object.keys(s.batchFailures).length
      ? [
          `  failed batches by code: ${Object.entries(s.batchFailures)
            .map(([code, n]) => `${code} ${n}`)
            .join(', ')}`,
        ]
      : []),
    ...(s.tokenLimitWaits ? [`  ${tokenLimitText(s.tokenLimitWaits)}`] : []),
    ...(s.deadline
      ? [
          `  deadline ${s.deadline.at}: ${s.deadline.switchedAt ? `switched to Batch Chat at ${s.deadline.switchedAt} (${s.deadline.reason})` : 'met by batches alone'}; ${s.deadline.lines.viaBatch} lines answered by batch, ${s.deadline.lines.viaChat} by chat${s.deadline.cost ? `; the switch cost ${s.deadline.cost.extra} ${s.deadline.cost.currency} more than batches` : ''}`,
        ]
      : []),
    ...(s.providerLookups ? s.providerLookups.meaning.map((m) => `  note: ${m}`) : []),
    ...failures.slice(0, FAILURES_SHOWN).map((f) => `  failure: ${renderFailure(f)}`),
    ...(failures.length > FAILURES_SHOWN
      ? [`  … ${failures.length - FAILURES_SHOWN} more failures in summary.json`]
      : []),
  ].join('\n');
}
