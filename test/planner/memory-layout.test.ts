// The plan's scan threads: one past 2.5M lines (the id table needs the room), unless the lines are
// keyed for reuse, where hashing and looking up every line is most of the work and a second thread
// pays for its slots.
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { layOutMemory } from '../../planner/memory.ts';

const GB = 1e9;
const layout = (lines: number, keyed: boolean) =>
  layOutMemory(3 * GB, lines, 6_000_000, 6_000_000, true, {}, keyed);

describe('scan threads by input size', () => {
  const cores = Math.min(2, os.availableParallelism());

  it('are one past 2.5M lines, and two below, when lines are not keyed', () => {
    expect(layout(10_000_000, false).threads).toBe(1);
    expect(layout(2_000_000, false).threads).toBe(cores);
  });

  it.runIf(cores === 2)('stay two past 2.5M lines when every line is keyed and looked up', () => {
    expect(layout(10_000_000, true).threads).toBe(2);
    expect(layout(10_000_000, true).slots).toBeGreaterThan(layout(10_000_000, false).slots);
  });
});
