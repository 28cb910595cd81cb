// Admission by enqueued tokens against the emulator's OpenAI-style limit: a batch the provider
// refuses for its enqueued-token limit waits and goes again without failing a line or spending a
// retry round, and a job told the limit (--max-enqueued-tokens) is never refused at all.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { promptTokensOf } from '../../emulator/answers.ts';
import { estimateTokens } from '../../common/tokens.ts';
import { FAST_FAULTS, readJsonl, startHarness, type Harness } from '../support/harness.ts';

const SHARDS = 4;
const LINES_PER_SHARD = 5;
const LIMITS = { maxLines: LINES_PER_SHARD, maxBytes: 100_000_000, maxLineBytes: 6_000_000 };

/** Long prompts, so the request's text and not its JSON envelope makes up its tokens. */
function writeInput(dataDir: string): { file: string; emulatorShard: number; plannedShard: number } {
  const rows: string[] = [];
  const bodies: Record<string, unknown>[] = [];
  for (let i = 0; i < SHARDS * LINES_PER_SHARD; i++) {
    const body = {
      model: 'qwen-plus',
      messages: [{ role: 'user', content: `question ${i}: ${'tell me more about batches. '.repeat(40)}` }],
    };
    bodies.push(body);
    rows.push(JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions', body }));
  }
  fs.writeFileSync(path.join(dataDir, 'in.jsonl'), rows.join('\n') + '\n');
  const shardOf = (s: number) => rows.slice(s * LINES_PER_SHARD, (s + 1) * LINES_PER_SHARD);
  const bytes = Math.max(
    ...[0, 1, 2, 3].map((s) => shardOf(s).reduce((n, r) => n + Buffer.byteLength(r) + 1, 0)),
  );
  return {
    file: 'in.jsonl',
    // The largest shard as the emulator counts it, and as the planner estimates it.
    emulatorShard: Math.max(
      ...[0, 1, 2, 3].map((s) =>
        bodies
          .slice(s * LINES_PER_SHARD, (s + 1) * LINES_PER_SHARD)
          .reduce((n, b) => n + promptTokensOf('/v1/chat/completions', b), 0),
      ),
    ),
    plannedShard: estimateTokens(bytes),
  };
}

describe('admission by enqueued tokens', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  /** The emulator holds two and a half shards' worth; slow lines keep batches enqueued a while. */
  async function harnessWithLimit() {
    const probeDir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'bp-tokens-'));
    const { emulatorShard } = writeInput(probeDir);
    fs.rmSync(probeDir, { recursive: true, force: true });
    const limit = Math.floor(2.5 * emulatorShard);
    h = await startHarness({
      faults: { ...FAST_FAULTS, perLineMs: 100, enqueuedTokenLimit: { 'qwen-plus': limit } },
      profile: 'openai',
    });
    return { h, limit, ...writeInput(h.dataDir) };
  }

  function outputs(out: string) {
    return {
      results: readJsonl<{ custom_id: string }>(path.join(out, 'results.jsonl')),
      errors: readJsonl(path.join(out, 'errors.jsonl')),
    };
  }

  it('waits out batches refused for the limit and sends them again: no line fails, no retry round', async () => {
    const { h, limit, file } = await harnessWithLimit();
    const summary = await h.runJob(file, 'out', { limits: LIMITS });
    const stats = await h.stats();
    // Four shards at once would hold more than the limit: the emulator refused some.
    expect(stats.tokenLimitRefusals).toBeGreaterThan(0);
    expect(stats.peakEnqueuedTokens['qwen-plus']).toBeLessThanOrEqual(limit);
    // Each refused batch's file went again, as a new batch of the same unit.
    const resent = Object.values(stats.batchesByInputFile).filter((n) => n > 1);
    expect(resent.length).toBeGreaterThan(0);
    expect(stats.batchesCreated).toBe(SHARDS + stats.tokenLimitRefusals);
    expect(summary.status).toBe('completed');
    expect(summary.lines).toEqual({ total: 20, succeeded: 20, failed: 0, rejected: 0 });
    expect(summary.rounds).toBe(1);
    expect(summary.tokenLimitWaits).toBe(stats.tokenLimitRefusals);
    expect(summary.batches).toBe(stats.batchesCreated);
    expect(summary.batchFailures).toBeUndefined();
    const { results, errors } = outputs(path.join(h.dataDir, 'out'));
    expect(errors).toEqual([]);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(20);
    // Refused batches hold nothing at the provider once the job is done.
    expect(stats.files).toBe(0);
  });

  it('with --max-enqueued-tokens under the provider limit is never refused, and a shard over it goes alone', async () => {
    const { h, emulatorShard, plannedShard } = await harnessWithLimit();
    // Two shards by the planner's estimate, which is at least what the emulator counts.
    expect(plannedShard).toBeGreaterThanOrEqual(emulatorShard);
    // A limit under one shard: each shard still goes, one at a time.
    const one = await h.runJob('in.jsonl', 'one', { limits: LIMITS, maxEnqueuedTokens: 1 });
    let stats = await h.stats();
    expect(one.lines.succeeded).toBe(20);
    expect(stats.tokenLimitRefusals).toBe(0);
    expect(stats.batchesCreated).toBe(SHARDS);
    expect(stats.peakEnqueuedTokens['qwen-plus']).toBeLessThanOrEqual(emulatorShard);

    const two = await h.runJob('in.jsonl', 'two', { limits: LIMITS, maxEnqueuedTokens: 2 * plannedShard });
    stats = await h.stats();
    expect(stats.tokenLimitRefusals).toBe(0);
    expect(two.tokenLimitWaits).toBeUndefined();
    expect(two.lines.succeeded).toBe(20);
    expect(stats.batchesCreated).toBe(2 * SHARDS);
  });
});
