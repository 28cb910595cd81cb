// Failures as the user reads them: a child's failure unwrapped down to what the provider said, and
// a unit's failed batch as entries of the summary's `failures`. Pure: no workflow APIs.
import type { FailureInfo, ProviderFailureDetails, UnitResult } from '../common/job-types.ts';

/** The unit's name in failures: `shard-<n>/round-<r>`. */
export function unitName(unit: { round: number; index: number }): string {
  return `shard-${unit.index}/round-${unit.round}`;
}

interface FailureLike {
  message?: unknown;
  type?: unknown;
  details?: unknown;
  cause?: unknown;
}

/**
 * The innermost failure under a child's ChildWorkflowFailure → ActivityFailure → ApplicationFailure
 * chain, which holds the real reason; the wrappers only say where it happened.
 */
export function innermost(err: unknown): FailureLike {
  let e = err as FailureLike;
  for (let i = 0; i < 10 && e?.cause && typeof e.cause === 'object'; i++) e = e.cause;
  return e ?? {};
}

/** What a failed child means for the summary: the provider's code and message where known. */
export function failureFromError(err: unknown, unit?: string): FailureInfo {
  const root = innermost(err);
  const details = Array.isArray(root.details)
    ? (root.details[0] as ProviderFailureDetails | undefined)
    : undefined;
  const message = typeof root.message === 'string' && root.message !== '' ? root.message : String(err);
  const type = typeof root.type === 'string' ? root.type : undefined;
  const known = details && typeof details === 'object' && typeof details.code === 'string';
  return {
    ...(unit ? { unit } : {}),
    code: known ? details.code : (type ?? 'failed'),
    message,
    ...(known && typeof details.status_code === 'number' ? { status_code: details.status_code } : {}),
    ...(known && details.call ? { call: details.call } : {}),
    ...(known && details.baseUrl ? { baseUrl: details.baseUrl } : {}),
  };
}

const PER_BATCH = 3;

/** A failed batch (errors.data) and error lines naming no line, as summary failures. */
export function batchFailureInfos(r: UnitResult): FailureInfo[] {
  const unit = unitName(r.unit);
  const batch = r.batchId ? { batchId: r.batchId } : {};
  const whole = r.fileErrors.filter((e) => e.line === null);
  const lined = r.fileErrors.filter((e) => e.line !== null);
  const out: FailureInfo[] = whole.slice(0, PER_BATCH).map((e) => ({
    unit,
    code: e.code,
    message: `the batch failed: ${e.message}`,
    ...batch,
  }));
  if (lined.length > 0) {
    const first = lined[0]!;
    out.push({
      unit,
      code: first.code,
      message: `the batch failed validation on ${lined.length} line(s), first line ${first.line}: ${first.message}`,
      ...batch,
    });
  }
  for (const u of (r.unattributed ?? []).slice(0, PER_BATCH)) {
    out.push({
      unit,
      code: u.code,
      message: `error line for custom_id ${JSON.stringify(u.custom_id)} (not a line of this batch): ${u.message}`,
      ...(u.status_code !== null ? { status_code: u.status_code } : {}),
      ...batch,
    });
  }
  return out;
}

/** Codes of a unit's batch-level failures, each once per batch. */
export function batchFailureCodes(r: UnitResult): string[] {
  return [...new Set([...r.fileErrors.map((e) => e.code), ...(r.unattributed ?? []).map((u) => u.code)])];
}
