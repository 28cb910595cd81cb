// A worker spaces its own calls of a class evenly: calls that become ready together leave one gap apart.
import { describe, expect, it, vi } from 'vitest';
import { Spacer } from '../../activities/spacer.ts';

describe('Spacer', () => {
  it('lets calls ready at once go one gap apart, in order', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const s = new Spacer(4); // 250 ms apart
      const left: number[] = [];
      const all = [0, 1, 2, 3].map((i) => s.turn().then(() => left.push(Date.now() + i / 10)));
      await vi.advanceTimersByTimeAsync(1000);
      await Promise.all(all);
      expect(left).toEqual([0, 250.1, 500.2, 750.3]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not hold calls when no rate is known', async () => {
    const s = new Spacer(undefined);
    let gone = 0;
    await Promise.all([s.turn(), s.turn(), s.turn()].map((p) => p.then(() => gone++)));
    expect(gone).toBe(3);
  });
});
