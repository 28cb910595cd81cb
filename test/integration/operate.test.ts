// Operating batchpilot through the CLI against the dev server: start/status/results with memo and
// search attributes, and nightly schedules whose {date} comes from the scheduled time (backfill).
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { main } from '../../client/cli.ts';
import { startHarness, writeChatInput, type Harness } from '../support/harness.ts';

async function cli(h: Harness, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    BATCHPILOT_TASK_QUEUE: h.taskQueue,
    BATCHPILOT_DATA_DIR: h.dataDir,
    BATCHPILOT_PROVIDER: 'emulator',
    BATCHPILOT_BASE_URL: h.emulator.url,
  };
  const code = await main(args, { stdout, stderr, env });
  return { code, out, err };
}

async function waitForFile(file: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no ${file}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('operating jobs from the CLI', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('start --wait, status, results --format csv, with memo and search attributes set', async () => {
    const input = writeChatInput(h.dataDir, 'op.jsonl', 12);
    const started = await cli(h, [
      'start',
      input,
      '--out',
      'op-out',
      '--poll-interval',
      '200ms',
      '--id',
      'op-job-1',
      '--wait',
    ]);
    expect(started.code).toBe(0);
    expect(started.out).toContain('op-job-1');
    expect(started.out).toContain('12 succeeded');
    const status = await cli(h, ['status', 'op-job-1', '--json']);
    expect(JSON.parse(status.out).summary.lines.succeeded).toBe(12);
    const results = await cli(h, ['results', 'op-job-1', '--format', 'csv']);
    expect(results.code).toBe(0);
    const csv = fs
      .readFileSync(path.join(h.dataDir, 'op-out', 'results.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(csv[0]).toBe('custom_id,status_code,content,usage');
    expect(csv).toHaveLength(13);
    expect(csv[1]).toMatch(/^req-0,200,/);
    const d = await h.client.workflow.getHandle('op-job-1').describe();
    expect(d.memo).toMatchObject({ input, outDir: 'op-out' });
    expect(d.searchAttributes.BatchpilotInput).toEqual([input]);
    expect(d.searchAttributes.BatchpilotStatus).toEqual(['completed']);
    expect(d.searchAttributes.BatchpilotLinesTotal).toEqual([12]);
    expect(d.searchAttributes.BatchpilotLinesFailed).toEqual([0]);
  });

  it('refuses paths outside the data root with a clear error', async () => {
    const r = await cli(h, ['start', '../outside.jsonl', '--out', 'x', '--id', 'op-job-escape', '--wait']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/outside the data root/);
  });

  it("schedules nightly jobs whose backfills read each scheduled day's file", async () => {
    fs.mkdirSync(path.join(h.dataDir, 'nightly'), { recursive: true });
    writeChatInput(h.dataDir, 'nightly/2026-11-17.jsonl', 5);
    writeChatInput(h.dataDir, 'nightly/2026-11-18.jsonl', 8);
    const id = `nightly-${Date.now()}`;
    const created = await cli(h, [
      'schedule',
      'create',
      id,
      'nightly/{date}.jsonl',
      '--out',
      'nightly-out/{date}',
      '--cron',
      '0 2 * * *',
      '--poll-interval',
      '200ms',
    ]);
    expect(created.code, created.err).toBe(0);
    const backfill = await cli(h, [
      'schedule',
      'backfill',
      id,
      '--from',
      '2026-11-17T00:00:00Z',
      '--to',
      '2026-11-18T03:00:00Z',
    ]);
    expect(backfill.code, backfill.err).toBe(0);
    for (const [day, lines] of [
      ['2026-11-17', 5],
      ['2026-11-18', 8],
    ] as const) {
      const file = path.join(h.dataDir, 'nightly-out', day, 'summary.json');
      await waitForFile(file);
      expect(JSON.parse(fs.readFileSync(file, 'utf8')).lines.succeeded).toBe(lines);
    }
    // Today's file does not exist: that run fails, the schedule stays alive.
    expect((await cli(h, ['schedule', 'trigger', id])).code).toBe(0);
    const described = JSON.parse((await cli(h, ['schedule', 'describe', id, '--json'])).out);
    expect(described.paused).toBe(false);
    expect(described.recentActions.length).toBeGreaterThanOrEqual(2);
    const list = await cli(h, ['schedule', 'list', '--json']);
    expect((JSON.parse(list.out) as { scheduleId: string }[]).map((s) => s.scheduleId)).toContain(id);
    expect((await cli(h, ['schedule', 'pause', id])).code).toBe(0);
    expect(JSON.parse((await cli(h, ['schedule', 'describe', id, '--json'])).out).paused).toBe(true);
    expect((await cli(h, ['schedule', 'delete', id])).code).toBe(0);
  });
});
