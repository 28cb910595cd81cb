// Runs started by a schedule carry batchpilot's search attributes like a started job's, so the Web
// UI's "jobs with failures" filter (BatchpilotLinesFailed > 0) and its kin find nightly runs too.
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { main } from '../../client/cli.ts';
import { SEARCH_ATTRIBUTE_KEYS } from '../../common/definitions.ts';
import { startHarness, writeChatInput, type Harness } from '../support/harness.ts';

describe('scheduled runs', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  async function cli(args: string[]) {
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      BATCHPILOT_TASK_QUEUE: h.taskQueue,
      BATCHPILOT_DATA_DIR: h.dataDir,
      BATCHPILOT_PROVIDER: 'emulator',
      BATCHPILOT_BASE_URL: h.emulator.url,
    };
    const code = await main(args, { stdout, stderr: new PassThrough(), env });
    return { code, out };
  }

  it('carry status, input and line counts as search attributes', async () => {
    fs.mkdirSync(path.join(h.dataDir, 'sa'), { recursive: true });
    writeChatInput(h.dataDir, 'sa/2026-11-20.jsonl', 6);
    const id = `sa-nightly-${Date.now()}`;
    const created = await cli([
      'schedule',
      'create',
      id,
      'sa/{date}.jsonl',
      '--out',
      'sa-out/{date}',
      '--cron',
      '0 2 * * *',
      '--poll-interval',
      '200ms',
    ]);
    expect(created.code, created.out).toBe(0);
    const backfill = await cli([
      'schedule',
      'backfill',
      id,
      '--from',
      '2026-11-20T01:00:00Z',
      '--to',
      '2026-11-20T03:00:00Z',
    ]);
    expect(backfill.code).toBe(0);
    let runId: string | undefined;
    for (let i = 0; i < 300 && !runId; i++) {
      const d = JSON.parse((await cli(['schedule', 'describe', id, '--json'])).out) as {
        recentActions: { workflowId: string }[];
      };
      runId = d.recentActions[0]?.workflowId;
      if (!runId) await new Promise((r) => setTimeout(r, 100));
    }
    expect(runId).toBeDefined();
    const handle = h.client.workflow.getHandle(runId!);
    await handle.result();
    const sa = (await handle.describe()).typedSearchAttributes;
    expect(sa.get(SEARCH_ATTRIBUTE_KEYS.status)).toBe('completed');
    expect(sa.get(SEARCH_ATTRIBUTE_KEYS.input)).toBe('sa/{date}.jsonl');
    expect(sa.get(SEARCH_ATTRIBUTE_KEYS.linesTotal)).toBe(6);
    expect(sa.get(SEARCH_ATTRIBUTE_KEYS.linesFailed)).toBe(0);
    // And a visibility query over them finds the scheduled run (visibility lags a little).
    const query = `BatchpilotLinesFailed = 0 AND BatchpilotStatus = 'completed' AND TemporalScheduledById = '${id}'`;
    let found: string[] = [];
    for (let i = 0; i < 100 && found.length === 0; i++) {
      found = [];
      for await (const w of h.client.workflow.list({ query })) found.push(w.workflowId);
      if (found.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(found).toEqual([runId]);
    expect((await cli(['schedule', 'delete', id])).code).toBe(0);
  });
});
