import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../activities/semaphore.ts';

describe('Semaphore', () => {
  it('runs at most `permits` calls at once, in arrival order, and frees permits on failure', async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    const task = (i: number, fail = false) =>
      sem.run(async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 5));
        order.push(i);
        active--;
        if (fail) throw new Error(`task ${i}`);
        return i;
      });
    const results = await Promise.allSettled([task(0), task(1, true), task(2), task(3), task(4)]);
    expect(peak).toBe(2);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(order.slice(2).sort()).toEqual([2, 3, 4]);
    expect(await task(5)).toBe(5);
  });
});
