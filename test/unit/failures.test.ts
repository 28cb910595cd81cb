// What the user reads when something fails: a child's failure unwrapped to the provider's words,
// a real refused connection told apart from an unknown outcome, and the words a job ends with.
import net from 'node:net';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState } from '@temporalio/common';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { publicUrl, surelyNotDone, toFailure } from '../../activities/provider-errors.ts';
import { exitCodeOf, outcomeWord, renderAlerts, renderSummary } from '../../client/progress-view.ts';
import type { JobProgress, JobSummary } from '../../common/job-types.ts';
import { failureFromError } from '../../workflows/failures.ts';

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A server that reads the request and then drops the connection without an answer. */
async function droppingServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = net.createServer((socket) => socket.once('data', () => socket.destroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const create = (baseURL: string) =>
  new OpenAI({ baseURL, apiKey: 'k', maxRetries: 0 }).batches.create({
    input_file_id: 'file-1',
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });

describe('provider errors', () => {
  it('knows a refused connection never reached the provider, and names the URL without credentials', async () => {
    const port = await closedPort();
    const err = await create(`http://127.0.0.1:${port}/v1`).catch((e: unknown) => e);
    expect(surelyNotDone(err)).toBe(true);
    const url = `http://user:secret@127.0.0.1:${port}/v1?key=k`;
    const f = toFailure(err, 'create batch', url);
    expect(f.type).toBe('ProviderUnreachable');
    expect(f.message).toMatch(/cannot reach the provider at http:\/\/127\.0\.0\.1:\d+\/v1 \(.*ECONNREFUSED/);
    expect(f.message).not.toContain('secret');
    expect(publicUrl(url)).not.toMatch(/secret|key=/);
  });

  it('knows a connection dropped after sending leaves the outcome unknown', async () => {
    const s = await droppingServer();
    try {
      const err = await create(s.url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
      expect(surelyNotDone(err)).toBe(false);
    } finally {
      await s.close();
    }
  });
});

describe('failureFromError', () => {
  it("unwraps a child's failure to the provider's code, status, call and message", () => {
    const app = ApplicationFailure.create({
      message: 'look up uploaded files: provider answered 404: no route GET /files',
      type: 'ProviderHttp404',
      nonRetryable: true,
      details: [
        {
          code: 'not_found',
          message: 'no route GET /files',
          status_code: 404,
          call: 'look up uploaded files',
        },
      ],
    });
    const activity = new ActivityFailure(
      'Activity task failed',
      'uploadUnit',
      'a1',
      RetryState.NON_RETRYABLE_FAILURE,
      undefined,
      app,
    );
    const child = new ChildWorkflowFailure(
      'default',
      { workflowId: 'j/shard-0', runId: 'r' },
      'shardBatch',
      RetryState.NON_RETRYABLE_FAILURE,
      activity,
    );
    expect(child.message).toBe('Child Workflow execution failed');
    expect(failureFromError(child, 'shard-0/round-1')).toEqual({
      unit: 'shard-0/round-1',
      code: 'not_found',
      message: 'look up uploaded files: provider answered 404: no route GET /files',
      status_code: 404,
      call: 'look up uploaded files',
    });
  });
});

const summary = (over: Partial<JobSummary> & { lines: JobSummary['lines'] }): JobSummary => ({
  workflowId: 'j',
  status: 'completed',
  input: 'in.jsonl',
  shards: 1,
  batches: 1,
  rounds: 1,
  usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  usageByModel: {},
  startedAt: '',
  finishedAt: '',
  outDir: 'out',
  ...over,
});

describe('words that fit', () => {
  it('says completed only when every line was answered, and exits 0 only then', () => {
    const all = summary({ lines: { total: 3, succeeded: 3, failed: 0, rejected: 0 } });
    const some = summary({ lines: { total: 3, succeeded: 2, failed: 1, rejected: 0 } });
    const none = summary({ status: 'failed', lines: { total: 3, succeeded: 0, failed: 3, rejected: 0 } });
    const cancelled = summary({
      status: 'cancelled',
      lines: { total: 3, succeeded: 1, failed: 2, rejected: 0 },
    });
    expect([all, some, none, cancelled].map(outcomeWord)).toEqual([
      'completed',
      'completed with failures',
      'failed',
      'cancelled',
    ]);
    expect([all, some, none, cancelled, undefined].map(exitCodeOf)).toEqual([0, 1, 1, 1, 1]);
  });
  it("shows each failure's unit, call, code, status and message in the summary", () => {
    const text = renderSummary(
      summary({
        status: 'failed',
        lines: { total: 3, succeeded: 0, failed: 3, rejected: 0 },
        failures: [
          {
            unit: 'shard-0/round-1',
            code: 'not_found',
            message: 'no route',
            status_code: 404,
            call: 'create batch',
          },
        ],
        batchFailures: { token_limit_exceeded: 2 },
      }),
    );
    expect(text).toMatch(/^job j failed$/m);
    expect(text).toContain('failure: shard-0/round-1, create batch: [not_found 404] no route');
    expect(text).toContain('failed batches by code: token_limit_exceeded 2');
  });
  it('says how many batches refused for the enqueued-token limit waited and went again', () => {
    const lines = { total: 3, succeeded: 3, failed: 0, rejected: 0 };
    expect(renderSummary(summary({ lines, tokenLimitWaits: 3 }))).toContain(
      '3 batches refused for the enqueued-token limit waited and went again (no retry round spent)',
    );
    expect(renderSummary(summary({ lines }))).not.toContain('enqueued-token limit');
  });
  it('says for how long a provider has been unreachable', () => {
    const p = {
      providerUnreachable: { url: 'http://h/v1', since: 1_000, message: 'cannot reach the provider' },
    } as JobProgress;
    expect(renderAlerts(p, 1_000 + 7 * 60_000 + 5)[0]).toBe(
      'provider unreachable at http://h/v1 for 7 min (retrying): cannot reach the provider',
    );
  });
});
