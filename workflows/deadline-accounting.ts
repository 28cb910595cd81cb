// What a deadline's switch does to the job's line accounting: a unit whose batch the switch
// cancelled hands its unfinished lines to the next round (sent by Batch Chat) instead of failing
// them; a unit sent by Batch Chat counts its lines and tokens as the deadline's. Types-only imports,
// so the job's state module can call it without a cycle.
import type { DeadlineState } from '../common/deadline.ts';
import type { UnitProgress, UnitResult } from '../common/job-types.ts';

/** Whether `unit` went (or goes) by Batch Chat because of the deadline's switch. */
export function sentByChat(d: DeadlineState | undefined, unit: { round: number; index: number }): boolean {
  if (d?.switchRound === undefined) return false;
  return unit.round > d.switchRound || (unit.round === d.switchRound && d.chatUnits.includes(unit.index));
}

/** Whether the switch cancelled `unit`'s batch. */
export function cancelledBySwitch(
  d: DeadlineState | undefined,
  unit: { round: number; index: number },
): boolean {
  return d?.switchRound === unit.round && d.cancelledUnits.includes(unit.index);
}

/** Applies a unit's result to the deadline's accounting (after the job's own). */
export function applyDeadlineResult(d: DeadlineState | undefined, unit: UnitProgress, r: UnitResult): void {
  if (!d) return;
  if (cancelledBySwitch(d, unit)) {
    // Stopped by the switch, not by the user: these lines are still to be answered, by chat.
    const c = r.cancelled ?? 0;
    unit.failed -= c;
    unit.retry += c;
    if (r.batchStatus === 'cancelled') d.batchesCancelled++;
  }
  if (sentByChat(d, unit)) {
    d.viaChat.lines += unit.lines;
    d.viaChat.succeeded += r.succeeded;
    if (r.usage) {
      const model = unit.model ?? 'unknown';
      const u = (d.viaChat.usageByModel[model] ??= {
        prompt_tokens: 0,
        completion_tokens: 0,
        total_tokens: 0,
      });
      u.prompt_tokens += r.usage.prompt_tokens;
      u.completion_tokens += r.usage.completion_tokens;
      u.total_tokens += r.usage.total_tokens;
    }
  }
}
