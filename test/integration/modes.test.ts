// Every mode the providers offer, end to end against the emulator: Batch Chat (with faults and a
// worker killed mid-shard), the free dry run on batch-test-model, and embeddings batches.
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import type { JobSummary } from '../../common/job-types.ts';
import { stopProcess } from '../../worker/dev-server.ts';
import {
  FAST_FAULTS,
  jobOptions,
  readJsonl,
  startHarness,
  writeChatInput,
  type Harness,
} from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

type ChatResult = {
  custom_id: string;
  response: {
    status_code: number;
    body: { choices: { message: { content: string } }[]; data?: { embedding: number[] }[] };
  };
};

function contents(file: string): Map<string, string> {
  return new Map(
    readJsonl<ChatResult>(file).map((r) => [r.custom_id, r.response.body.choices[0]!.message.content]),
  );
}

describe('provider modes', () => {
  let h: Harness | undefined;
  let worker: ChildProcess | undefined;
  afterEach(async () => {
    if (worker) await stopProcess(worker);
    worker = undefined;
    await h?.close();
    h = undefined;
  });

  it('Batch Chat mode gives the same outputs as file mode, through control-plane faults', async () => {
    h = await startHarness({
      faults: {
        ...FAST_FAULTS,
        chatDelayMs: 20,
        http: { rate: 0.2, statuses: [429, 500, 503], routes: ['chat'] },
      },
    });
    const input = writeChatInput(h.dataDir, 'chat.jsonl', 50);
    const chat = await h.runJob(input, 'out-chat', {
      mode: 'chat',
      chat: { concurrency: 8, qps: 200 },
      limits: { maxLines: 20, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
    });
    expect(chat.status).toBe('completed');
    expect(chat.lines.succeeded + chat.lines.failed).toBe(50);
    expect(chat.batches).toBe(0);
    await expectInvariant(h, path.join(h.dataDir, 'out-chat'), 50);
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(0);
    expect(stats.requests.chat).toBeGreaterThanOrEqual(50);
    const file = await h.runJob(input, 'out-file', {
      limits: { maxLines: 20, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
    });
    expect(file.lines.succeeded).toBe(50);
    const fromChat = contents(path.join(h.dataDir, 'out-chat', 'results.jsonl'));
    const fromFile = contents(path.join(h.dataDir, 'out-file', 'results.jsonl'));
    for (const [id, text] of fromChat) expect(text, id).toBe(fromFile.get(id));
    expect(fromChat.size).toBe(chat.lines.succeeded);
  });

  it(
    'Batch Chat resumes after a worker kill without re-sending finished lines',
    { timeout: 300_000 },
    async () => {
      h = await startHarness({ faults: { ...FAST_FAULTS, chatDelayMs: 250 }, inProcessWorker: false });
      const input = writeChatInput(h.dataDir, 'chat-kill.jsonl', 60);
      worker = h.spawnWorker();
      const handle = await h.client.workflow.start(JOB_WORKFLOW, {
        taskQueue: h.taskQueue,
        workflowId: `chat-kill-${Date.now()}`,
        args: [
          {
            input,
            outDir: 'out-chat-kill',
            options: jobOptions({ mode: 'chat', chat: { concurrency: 4, qps: 100 } }),
          },
        ],
      });
      const deadline = Date.now() + 120_000;
      while (((await h.stats()).requests.chat ?? 0) < 20 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      worker.kill('SIGKILL');
      await new Promise((r) => worker!.once('exit', r));
      const atKill = (await h.stats()).requests.chat ?? 0;
      expect(atKill).toBeLessThan(60);
      worker = h.spawnWorker();
      const summary = (await handle.result()) as JobSummary;
      expect(summary.lines.succeeded).toBe(60);
      await expectInvariant(h, path.join(h.dataDir, 'out-chat-kill'), 60);
      // Only the requests in flight at the kill (at most the concurrency) may be sent twice.
      expect((await h.stats()).requests.chat).toBeLessThanOrEqual(60 + 4);
    },
  );

  it('dry run sends every line to batch-test-model in shards of at most 100 lines', async () => {
    h = await startHarness();
    const input = writeChatInput(h.dataDir, 'dry.jsonl', 250);
    const summary = await h.runJob(input, 'out-dry', { dryRun: true });
    expect(summary.status).toBe('completed');
    expect(summary.shards).toBe(3);
    expect(summary.lines.succeeded).toBe(250);
    expect(summary.usage.total_tokens).toBe(250 * 26);
    const results = readJsonl<ChatResult>(path.join(h.dataDir, 'out-dry', 'results.jsonl'));
    expect(results[0]!.response.body.choices[0]!.message.content).toBe('This is a test result.');
    const manifest = JSON.parse(fs.readFileSync(path.join(h.dataDir, 'out-dry', 'manifest.json'), 'utf8'));
    for (const s of manifest.shards) expect(s.model).toBe('batch-test-model');
  });

  it('embeddings batches put the vectors in results.jsonl', async () => {
    h = await startHarness();
    const rows = Array.from({ length: 30 }, (_, i) =>
      JSON.stringify({
        custom_id: `e-${i}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'text-embedding-v4', input: `text number ${i}` },
      }),
    );
    fs.writeFileSync(path.join(h.dataDir, 'emb.jsonl'), rows.join('\n') + '\n');
    const summary = await h.runJob('emb.jsonl', 'out-emb', { endpoint: '/v1/embeddings' });
    expect(summary.lines.succeeded).toBe(30);
    const results = readJsonl<ChatResult>(path.join(h.dataDir, 'out-emb', 'results.jsonl'));
    expect(results.map((r) => r.custom_id)).toEqual(Array.from({ length: 30 }, (_, i) => `e-${i}`));
    const vector = results[0]!.response.body.data![0]!.embedding;
    expect(vector.length).toBeGreaterThan(0);
    expect(vector.every((x) => typeof x === 'number')).toBe(true);
  });
});
