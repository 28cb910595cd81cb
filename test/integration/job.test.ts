// The durable job end to end: real Temporal dev server, the emulator over HTTP, the real openai
// client. Each scenario checks the contract's invariant and exactly one batch per (shard, round).
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { rootCause } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROGRESS_QUERY } from '../../common/definitions.ts';
import type { JobProgress } from '../../common/job-types.ts';
import { readJsonl, startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

describe('batch job', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('runs a multi-shard job with mixed models and merges every line in input order', async () => {
    const input = writeChatInput(h.dataDir, 'mixed.jsonl', 230, ['qwen-plus', 'qwen-flash']);
    // One rejected line: a duplicate custom_id.
    fs.appendFileSync(
      path.join(h.dataDir, input),
      JSON.stringify({
        custom_id: 'req-3',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', messages: [] },
      }) + '\n',
    );
    const id = `mixed-${Date.now()}`;
    const summary = await h.runJob(
      input,
      'out-mixed',
      {
        limits: { maxLines: 40, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
        prices: { currency: 'USD', models: { 'qwen-plus': { input: 0.4, output: 1.2 } } },
      },
      id,
    );
    expect(summary.status).toBe('completed');
    expect(summary.lines).toEqual({ total: 231, succeeded: 230, failed: 0, rejected: 1 });
    // The progress query agrees with the merged outputs.
    const progress = await h.client.workflow.getHandle(id).query<JobProgress>(PROGRESS_QUERY);
    expect(progress.phase).toBe('done');
    expect(progress.lines).toEqual({
      total: 231,
      valid: 230,
      rejected: 1,
      succeeded: 230,
      failed: 0,
      pendingRetry: 0,
    });
    expect(progress.shards.map((s) => s.status)).toEqual(Array(6).fill('done'));
    expect(progress.batchesCreated).toBe(6);
    expect(summary.shards).toBe(6);
    expect(summary.rounds).toBe(1);
    expect(summary.usage.total_tokens).toBeGreaterThan(0);
    // Usage per model adds up, and the cost covers the priced model and names the other.
    const plus = summary.usageByModel['qwen-plus']!;
    const flash = summary.usageByModel['qwen-flash']!;
    expect(plus.total_tokens + flash.total_tokens).toBe(summary.usage.total_tokens);
    expect(summary.cost!.unpriced).toEqual(['qwen-flash']);
    expect(summary.cost!.total).toBeCloseTo(
      ((plus.prompt_tokens * 0.4 + plus.completion_tokens * 1.2) / 1e6) * 0.5,
      6,
    );
    const out = path.join(h.dataDir, 'out-mixed');
    const results = readJsonl<{
      custom_id: string;
      response: { status_code: number; body: { choices: { message: { content: string } }[] } };
    }>(path.join(out, 'results.jsonl'));
    expect(results.map((r) => r.custom_id)).toEqual(Array.from({ length: 230 }, (_, i) => `req-${i}`));
    expect(results[7]!.response.status_code).toBe(200);
    expect(results[7]!.response.body.choices[0]!.message.content).toContain('question 7');
    const rejected = readJsonl<{ line: number; code: string }>(path.join(out, 'rejected.jsonl'));
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.line).toBe(231);
    const written = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(written).toMatchObject({ status: 'completed', lines: summary.lines, shards: 6, batches: 6 });
    // Only the folder's job record stays: the same command later reports this job, not a new one.
    expect(fs.readdirSync(path.join(out, '.batchpilot'))).toEqual(['job.json']);
    await expectInvariant(h, out, 231);
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(6);
    // Provider files are deleted once results are safe locally.
    expect(stats.files).toBe(0);
  });
});

describe('CSV input', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('converts a CSV as the providers do and runs it', async () => {
    fs.writeFileSync(path.join(h.dataDir, 'prompts.csv'), 'id,prompt\nq1,"Hello, world"\nq2,"Say ""hi"""\n');
    const csv = { idColumn: 'id', promptColumn: 'prompt', model: 'qwen-plus', system: 'Be brief.' };
    const summary = await h.runJob('prompts.csv', 'out-csv', { csv });
    expect(summary.lines).toEqual({ total: 2, succeeded: 2, failed: 0, rejected: 0 });
    const results = readJsonl<{
      custom_id: string;
      response: { body: { choices: { message: { content: string } }[] } };
    }>(path.join(h.dataDir, 'out-csv', 'results.jsonl'));
    expect(results.map((r) => r.custom_id)).toEqual(['q1', 'q2']);
    expect(results[1]!.response.body.choices[0]!.message.content).toContain('Say "hi"');
  });

  it('fails at once, naming the column, when the CSV lacks it', async () => {
    fs.writeFileSync(path.join(h.dataDir, 'bad.csv'), 'id,text\nq1,hello\n');
    const started = Date.now();
    const err = await h
      .runJob('bad.csv', 'out-bad-csv', {
        csv: { idColumn: 'id', promptColumn: 'prompt', model: 'qwen-plus' },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(rootCause((err as WorkflowFailedError).cause)).toMatch(/prompt/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
