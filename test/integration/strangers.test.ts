// Against servers that are not the emulator's default self: no list routes, a create answered by
// a dropped connection, failures reported in an error line naming no line, a provider that is
// down. Each failure must reach summary.json `failures`, errors.jsonl and the job's status with the
// provider's own words, and the job's remote files must be gone whatever the end.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { JobOptions, JobProgress, JobSummary } from '../../common/job-types.ts';
import { unitWorkflowId } from '../../common/keys.ts';
import type { FaultSettings } from '../../emulator/index.ts';
import { FAST_FAULTS, readJsonl, startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';
import { startStranger, type Stranger } from '../support/stranger-server.ts';

const LIMITS = { maxLines: 10, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

interface ErrorLine {
  custom_id: string;
  error: { code: string; message: string; status_code: number | null };
}

/** Runs a job to its end, failed or not, and returns the summary it wrote and its errors. */
async function runToEnd(h: Harness, options: Partial<JobOptions> = {}, lines = 30, oneBatchPerFile = true) {
  const input = writeChatInput(h.dataDir, 'in.jsonl', lines);
  let returned: JobSummary | undefined;
  let failedWith: string | undefined;
  try {
    returned = await h.runJob(input, 'out', { limits: LIMITS, ...options });
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    failedWith = err.cause?.message;
  }
  const out = path.join(h.dataDir, 'out');
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as JobSummary;
  if (returned) expect(returned.status).toBe(summary.status);
  if (oneBatchPerFile) await expectInvariant(h, out, lines);
  return { summary, failedWith, errors: readJsonl<ErrorLine>(path.join(out, 'errors.jsonl')), out };
}

describe('strangers', () => {
  let h: Harness | undefined;
  let stranger: Stranger | undefined;
  afterEach(async () => {
    await h?.close();
    await stranger?.close();
    h = undefined;
    stranger = undefined;
  });

  async function harness(faults: FaultSettings, over: Parameters<typeof startHarness>[0] = {}) {
    h = await startHarness({ faults: { ...FAST_FAULTS, ...faults }, ...over });
    return h;
  }

  it('completes a job on a bare server without list routes, and says what that means', async () => {
    const h = await harness({ quirks: ['no-list-routes'] });
    // One shard at a time, so the discovery by the first shard is what the others rely on.
    const { summary } = await runToEnd(h, { maxInFlight: 1 }, 50);
    expect(summary.status).toBe('completed');
    expect(summary.lines.succeeded).toBe(50);
    expect(summary.providerLookups?.unavailable.sort()).toEqual(['GET /batches', 'GET /files']);
    expect(summary.providerLookups?.meaning.join('\n')).toMatch(/--allow-duplicate-batches/);
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(5);
    // Discovered once per worker, not asked again before every create.
    expect(stats.requests.list).toBe(1);
    expect(stats.files).toBe(0);
  });

  /** A harness whose worker talks to a stand-in server in front of its emulator. */
  async function behindStranger(
    faults: FaultSettings,
    drop: number,
    over: Parameters<typeof startHarness>[0] = {},
  ) {
    h = await startHarness({ faults: { ...FAST_FAULTS, ...faults }, inProcessWorker: false, ...over });
    stranger = await startStranger(h.emulator.url, { dropCreates: drop });
    await h.startWorker(stranger.url);
    return { h, stranger };
  }

  it('stops the shard whose create got no answer on a server that cannot be asked, naming the key and file', async () => {
    const { h } = await behindStranger({}, 1);
    const { summary, errors, failedWith } = await runToEnd(h);
    expect(summary.status).toBe('failed');
    const f = summary.failures?.find((x) => x.code === 'batch_outcome_unknown');
    expect(f, JSON.stringify(summary.failures)).toBeDefined();
    expect(f!.unit).toMatch(/^shard-\d\/round-1$/);
    expect(f!.call).toBe('create batch');
    expect(f!.message).toMatch(/shard-\d\/round-1: the outcome is unknown/);
    expect(f!.message).toMatch(/input_file_id file-batch-[0-9a-f]+/);
    expect(f!.message).toMatch(/--allow-duplicate-batches/);
    expect(failedWith).toContain('the outcome is unknown');
    expect(failedWith).not.toContain('Child Workflow execution failed');
    // The stopped shard's lines say why in errors.jsonl; the other shards' lines succeeded.
    expect(errors).toHaveLength(10);
    for (const e of errors)
      expect(e.error).toMatchObject({ code: 'batch_outcome_unknown', message: f!.message });
    expect(summary.lines.succeeded).toBe(20);
    // Lists are 405 here, so the lookups are reported unavailable; no second batch was sent.
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(3);
    expect(summary.providerLookups?.unavailable).toContain('GET /batches');
  });

  it('does not re-send a create whose attempt never came back (timed out while sending)', async () => {
    // The first create reaches the provider and is never answered: the attempt times out as if its
    // worker had died, and the next attempt finds the note the first left before sending.
    const { h, stranger } = await behindStranger({}, 0, {});
    await stranger.close();
    const hanging = await startStranger(h.emulator.url, { port: stranger.port, hangCreates: 1 });
    try {
      const { summary } = await runToEnd(h, {}, 10);
      expect(summary.status).toBe('failed');
      expect(summary.failures?.[0]?.message).toMatch(
        /the outcome is unknown \(an earlier attempt stopped while sending it\).*input_file_id file-batch-/,
      );
      expect(hanging.creates).toBe(1);
      expect((await h.stats()).batchesCreated).toBe(1);
    } finally {
      await hanging.close();
    }
  }, 120_000);

  it('re-sends such a create with --allow-duplicate-batches (one extra batch, the job completes)', async () => {
    const { h, stranger } = await behindStranger({}, 1);
    const { summary, out } = await runToEnd(h, { allowDuplicateBatches: true }, 30, false);
    expect(summary.status).toBe('completed');
    expect(summary.lines.succeeded).toBe(30);
    expect(readJsonl(path.join(out, 'results.jsonl'))).toHaveLength(30);
    expect(stranger.creates).toBe(4);
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(4);
  });

  it('keeps an error-file line naming no line of the batch as its failure, and the job that answered nothing failed', async () => {
    const h = await harness({ failBatchRate: 1, quirks: ['batch-error-line'] });
    const { summary, errors } = await runToEnd(h, { maxAttempts: 1 });
    expect(summary.status).toBe('failed');
    expect(summary.lines.succeeded).toBe(0);
    expect(summary.batchFailures).toEqual({ token_limit_exceeded: 3 });
    const f = summary.failures?.find((x) => x.code === 'token_limit_exceeded');
    expect(f?.message).toMatch(/custom_id "turn".*Enqueued token limit reached/);
    expect(errors).toHaveLength(30);
    for (const e of errors) {
      expect(e.error.code).toBe('token_limit_exceeded');
      expect(e.error.message).toMatch(/Enqueued token limit reached/);
    }
    expect((await h.stats()).files).toBe(0);
  });

  it('collects around malformed result lines: their requests fail once, quoting the damage, and the job ends', async () => {
    // Each batch's first processed line comes cut off after its custom_id, its second before it.
    const h = await harness({ quirks: ['malformed-output-line'] });
    const input = writeChatInput(h.dataDir, 'in.jsonl', 30);
    const jobId = `malformed-${Date.now()}`;
    const summary = await h.runJob(input, 'out', { limits: LIMITS }, jobId);
    const out = path.join(h.dataDir, 'out');
    await expectInvariant(h, out, 30);
    expect(summary.status).toBe('completed');
    expect(summary.lines).toMatchObject({ succeeded: 24, failed: 6 });
    // Malformed output is final: sending those requests again would pay for them twice.
    expect(summary.rounds).toBe(1);
    const errors = readJsonl<ErrorLine>(path.join(out, 'errors.jsonl'));
    expect(errors).toHaveLength(6);
    for (const e of errors) expect(e.error.code, e.custom_id).toBe('malformed_output');
    const legible = errors.filter((e) => /for this line: "\{\\"id\\":\\"batch_req_/.test(e.error.message));
    const unreadable = errors.filter((e) =>
      /1 malformed output line\(s\) whose custom_id could not be read \(the first: "\{\\"id\\":\\"batch_req_\w+\\",".*no result for this line/.test(
        e.error.message,
      ),
    );
    expect(legible, JSON.stringify(errors)).toHaveLength(3);
    expect(unreadable, JSON.stringify(errors)).toHaveLength(3);
    // Each shard collected on its first attempt: a malformed line is not an error to retry.
    for (let shard = 0; shard < 3; shard++) {
      const { events } = await h.client.workflow.getHandle(unitWorkflowId(jobId, 1, shard)).fetchHistory();
      const scheduled = events!.find(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'collectUnit',
      );
      expect(scheduled, `collectUnit of shard ${shard}`).toBeDefined();
      const started = events!.find(
        (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled!.eventId),
      );
      expect(started?.activityTaskStartedEventAttributes?.attempt, `shard ${shard}`).toBe(1);
    }
  });

  it("deletes a failed batch's files and gives its lines the batch's errors.data reason", async () => {
    const h = await harness({ failBatchRate: 1 });
    const { summary, errors } = await runToEnd(h, { maxAttempts: 1 });
    expect(summary.status).toBe('failed');
    expect(summary.batchFailures).toEqual({ token_limit_exceeded: 3 });
    for (const e of errors) expect(e.error.message).toMatch(/Enqueued token limit reached/);
    expect((await h.stats()).files).toBe(0);
  });

  it('deletes the uploaded file of a shard that failed after its upload', async () => {
    // Every create is answered 400 (a 4xx never retries): the shards fail after their upload.
    const h = await harness({ http: { rate: 1, statuses: [400], routes: ['create'] } });
    const { summary, errors } = await runToEnd(h);
    expect(summary.status).toBe('failed');
    const f = summary.failures?.[0];
    expect(f).toMatchObject({ call: 'create batch', status_code: 400, code: 'injected_fault' });
    expect(f?.message).toMatch(/provider at http:\/\/127\.0\.0\.1:\d+\/v1 answered 400: injected fault/);
    expect(errors).toHaveLength(30);
    expect(errors[0]?.error).toMatchObject({ code: 'injected_fault', status_code: 400 });
    const stats = await h.stats();
    expect(stats.files).toBe(0);
  });
});

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'batchpilot.ts');

/** Runs the CLI as a user would, without blocking this process (its in-process worker runs here). */
function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('strangers, as the CLI shows them', () => {
  let h: Harness | undefined;
  let stranger: Stranger | undefined;
  afterEach(async () => {
    await h?.close();
    await stranger?.close();
    h = undefined;
    stranger = undefined;
  });

  const cliEnv = (h: Harness): Record<string, string> => ({
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    BATCHPILOT_TASK_QUEUE: h.taskQueue,
    BATCHPILOT_DATA_DIR: h.dataDir,
    BATCHPILOT_BASE_URL: h.emulator.url,
    LOG_LEVEL: 'warn',
  });

  it("ends `start --wait` with the batch's own reason and exit code 1 when no line was answered", async () => {
    h = await startHarness({ faults: { ...FAST_FAULTS, failBatchRate: 1, quirks: ['batch-error-line'] } });
    writeChatInput(h.dataDir, 'in.jsonl', 30);
    const id = `cli-failed-${Date.now()}`;
    const r = await cli(
      [
        'start',
        'in.jsonl',
        '--out',
        'out',
        '--wait',
        '--id',
        id,
        '--poll-interval',
        '200ms',
        '--max-lines',
        '10',
        '--max-attempts',
        '1',
      ],
      cliEnv(h),
    );
    expect(r.code, r.stderr).toBe(1);
    const last = r.stdout.trim().split('\n').slice(-10).join('\n');
    expect(last).toContain(`job ${id} failed`);
    expect(last).toContain('lines: 30 total, 0 succeeded, 30 failed, 0 rejected');
    expect(last).toContain('failed batches by code: token_limit_exceeded 3');
    expect(last).toMatch(
      /failure: shard-\d\/round-1: \[token_limit_exceeded\] error line for custom_id "turn" \(not a line of this batch\): Enqueued token limit reached/,
    );
    const status = await cli(['status', id, '--json'], cliEnv(h));
    const json = JSON.parse(status.stdout) as { summary: JobSummary };
    expect(json.summary.status).toBe('failed');
    expect(json.summary.failures?.[0]?.message).toMatch(/Enqueued token limit reached/);
  });

  it('says in `status --json` that the provider is unreachable, then finishes once it is back', async () => {
    h = await startHarness({ faults: FAST_FAULTS, inProcessWorker: false, unreachableAfterMs: 1000 });
    const port = await freePort();
    await h.startWorker(`http://127.0.0.1:${port}/v1`);
    const input = writeChatInput(h.dataDir, 'in.jsonl', 10);
    const id = `unreachable-${Date.now()}`;
    const done = h.runJob(input, 'out', { limits: LIMITS }, id);
    let alerts: string[] = [];
    let progress: JobProgress | undefined;
    for (let i = 0; i < 60 && !alerts.some((a) => a.startsWith('provider unreachable')); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const r = await cli(['status', id, '--json'], cliEnv(h));
      if (r.code !== 0) continue;
      progress = JSON.parse(r.stdout) as JobProgress & { alerts: string[] };
      alerts = (progress as JobProgress & { alerts: string[] }).alerts;
    }
    expect(alerts[0]).toMatch(
      new RegExp(
        `^provider unreachable at http://127\\.0\\.0\\.1:${port}/v1 for \\d+ min \\(retrying\\): .*ECONNREFUSED`,
      ),
    );
    expect(progress?.providerUnreachable?.url).toBe(`http://127.0.0.1:${port}/v1`);
    const text = await cli(['status', id], cliEnv(h));
    expect(text.stdout).toMatch(
      /provider unreachable at http:\/\/127\.0\.0\.1:\d+\/v1 for \d+ min \(retrying\)/,
    );
    // The provider comes back (a bare one, without list routes): the job goes on and completes.
    stranger = await startStranger(h.emulator.url, { port });
    const summary = await done;
    expect(summary.status).toBe('completed');
    expect(summary.lines.succeeded).toBe(10);
  });

  it('says so in Batch Chat mode too, and clears it once the provider answers again', async () => {
    // Answers take a while, so the job is still running when the alert should have cleared.
    h = await startHarness({
      faults: { ...FAST_FAULTS, chatDelayMs: 1000 },
      inProcessWorker: false,
      unreachableAfterMs: 1000,
    });
    const port = await freePort();
    await h.startWorker(`http://127.0.0.1:${port}/v1`);
    const input = writeChatInput(h.dataDir, 'in.jsonl', 10);
    const id = `unreachable-chat-${Date.now()}`;
    const done = h.runJob(
      input,
      'out',
      { limits: LIMITS, mode: 'chat', chat: { concurrency: 2, qps: 100 } },
      id,
    );
    const statusOf = async () => {
      const r = await cli(['status', id, '--json'], cliEnv(h!));
      return r.code === 0 ? (JSON.parse(r.stdout) as JobProgress & { alerts?: string[] }) : undefined;
    };
    let progress: (JobProgress & { alerts?: string[] }) | undefined;
    for (let i = 0; i < 60 && !progress?.providerUnreachable; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      progress = await statusOf();
    }
    expect(progress?.providerUnreachable?.url).toBe(`http://127.0.0.1:${port}/v1`);
    expect(progress?.alerts?.[0]).toMatch(
      new RegExp(
        `^provider unreachable at http://127\\.0\\.0\\.1:${port}/v1 for \\d+ min \\(retrying\\): .*ECONNREFUSED`,
      ),
    );
    const text = await cli(['status', id], cliEnv(h));
    expect(text.stdout).toMatch(
      /provider unreachable at http:\/\/127\.0\.0\.1:\d+\/v1 for \d+ min \(retrying\)/,
    );

    // The provider comes back: the alert clears while the unit's lines are still being answered.
    stranger = await startStranger(h.emulator.url, { port });
    let cleared: (JobProgress & { alerts?: string[] }) | undefined;
    for (let i = 0; i < 100 && !cleared; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const p = await statusOf();
      if (p?.phase === 'running' && !p.providerUnreachable) cleared = p;
    }
    expect(cleared?.phase).toBe('running');
    expect(cleared?.alerts ?? []).not.toContainEqual(expect.stringMatching(/provider unreachable/));
    const summary = await done;
    expect(summary.status).toBe('completed');
    // No line was given up on, or sent to another round, for the outage.
    expect(summary.lines.succeeded).toBe(10);
    expect(summary.lines.failed).toBe(0);
    expect(summary.rounds).toBe(1);
  });

  it('counts the outage in the batchpilot_provider_unreachable metric a worker process exports', async () => {
    h = await startHarness({ faults: FAST_FAULTS, inProcessWorker: false });
    const port = await freePort();
    const metricsPort = await freePort();
    const worker = h.spawnWorker({
      BATCHPILOT_BASE_URL: `http://127.0.0.1:${port}/v1`,
      BATCHPILOT_UNREACHABLE_AFTER: '1s',
      BATCHPILOT_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'warn',
    });
    let log = '';
    worker.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    worker.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    const scrape = async (): Promise<number | undefined> => {
      const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
      const m = /^batchpilot_provider_unreachable(?:_total)?(?:\{[^}]*\})? (\d+)/m.exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const loudLines = () =>
      (log.match(/provider unreachable at http:\/\/127\.0\.0\.1:\d+\/v1 for/g) ?? []).length;
    try {
      const input = writeChatInput(h.dataDir, 'in.jsonl', 10);
      const done = h.runJob(input, 'out', { limits: LIMITS }, `unreachable-metric-${Date.now()}`);
      let during: number | undefined;
      for (let i = 0; i < 60 && !(during && during >= 2); i++) {
        await new Promise((r) => setTimeout(r, 1000));
        during = await scrape();
      }
      // Counted while the provider is still down, once per call given up on as an outage.
      expect(during).toBeGreaterThanOrEqual(2);
      stranger = await startStranger(h.emulator.url, { port });
      const summary = await done;
      expect(summary.status).toBe('completed');
      // Once the job is done nothing counts any more: the metric equals the outages the worker logged.
      let after: number | undefined;
      for (let i = 0; i < 20 && after !== loudLines(); i++) {
        await new Promise((r) => setTimeout(r, 500));
        after = await scrape();
      }
      expect(after).toBe(loudLines());
      expect(after).toBeGreaterThanOrEqual(during!);
    } finally {
      worker.kill();
    }
  });
});
