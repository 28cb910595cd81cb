// When the watcher tells a shard its batch is still watched: before the shard's fallback read,
// early enough that the next sweep cannot come too late, never on every sweep.
import { describe, expect, it } from 'vitest';
import {
  FALLBACK_MS,
  fallbackDelay,
  stillWatchedDue,
  type WatchRegistration,
} from '../../common/batch-watch.ts';

const MIN = 60_000;

function registration(over: Partial<WatchRegistration> = {}): WatchRegistration {
  return { batchId: 'b', fileId: 'f', createdAt: 0, workflowId: 'w', seen: 's', wokenAt: 0, ...over };
}

describe('stillWatchedDue', () => {
  it('is due an eighth of the fallback before it, at the default poll interval', () => {
    const r = registration();
    expect(FALLBACK_MS).toBe(180 * MIN);
    expect(stillWatchedDue(r, 157 * MIN, 90_000)).toBe(false);
    expect(stillWatchedDue(r, FALLBACK_MS - FALLBACK_MS / 8, 90_000)).toBe(true);
  });

  it('comes three sweep periods early when sweeps are slower than an eighth of a short fallback', () => {
    // --poll-interval 1s: the fallback is 120 s; sweeps of thousands of batches every 20 s.
    const r = registration({ pollIntervalMs: 1000 });
    expect(stillWatchedDue(r, 100_000, 1000)).toBe(false);
    expect(stillWatchedDue(r, 105_000, 1000)).toBe(true);
    expect(stillWatchedDue(r, 59_000, 20_000)).toBe(false);
    expect(stillWatchedDue(r, 60_000, 20_000)).toBe(true);
  });

  it('never comes before half the fallback, however long the last sweep period', () => {
    const r = registration({ pollIntervalMs: 1000 });
    expect(stillWatchedDue(r, 59_000, 3_600_000)).toBe(false);
    expect(stillWatchedDue(r, 60_000, 3_600_000)).toBe(true);
  });

  it('is never due for a registration the watcher has not timed', () => {
    expect(stillWatchedDue(registration({ wokenAt: undefined }), 10 * FALLBACK_MS)).toBe(false);
  });

  it('tells a shard whose fallback is too short for the sweeps at once, and then by its told period', () => {
    // --poll-interval 1s with 2,100 batches: sweeps of ~139 s, longer than the 120 s fallback.
    const fresh = registration({ pollIntervalMs: 1000 });
    expect(stillWatchedDue(fresh, 0, 139_000, true)).toBe(true);
    // Without told periods (watchers from before them) only the timing rule applies.
    expect(stillWatchedDue(fresh, 0, 139_000, false)).toBe(false);
    // Told 139 s: its fallback is now 4 sweep periods, and the wake comes 2 periods before it.
    const told = registration({ pollIntervalMs: 1000, sweepPeriodMs: 139_000 });
    expect(fallbackDelay(1000, 139_000)).toBe(556_000);
    expect(stillWatchedDue(told, 277_000, 139_000, true)).toBe(false);
    expect(stillWatchedDue(told, 278_000, 139_000, true)).toBe(true);
    // Sweeps that quicken or slow a little send no extra wakes; ones that more than double do.
    expect(stillWatchedDue(told, 1000, 100_000, true)).toBe(false);
    expect(stillWatchedDue(told, 1000, 270_000, true)).toBe(false);
    expect(stillWatchedDue(told, 1000, 290_000, true)).toBe(true);
  });

  it('never lengthens the fallback past the default, whatever the sweep period', () => {
    expect(fallbackDelay(undefined, 3_600_000)).toBe(FALLBACK_MS);
    expect(fallbackDelay(1000, 10 * 3_600_000)).toBe(FALLBACK_MS);
    expect(fallbackDelay(1000, 0)).toBe(120_000);
  });
});
