// When the watcher tells a shard its batch is still watched: before the shard's fallback read,
// early enough that the next sweep cannot come too late, never on every sweep.
import { describe, expect, it } from 'vitest';
import { FALLBACK_MS, stillWatchedDue, type WatchRegistration } from '../../common/batch-watch.ts';

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
});
