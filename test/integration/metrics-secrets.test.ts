// A production-shaped worker process: Prometheus metrics with batchpilot's counters after a job,
// and the API key in no log line, history, output file or error.
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import type { JobSummary } from '../../common/job-types.ts';
import { unitWorkflowId } from '../../common/keys.ts';
import { freePort, stopProcess } from '../../worker/dev-server.ts';
import { jobOptions, startHarness, writeChatInput, type Harness } from '../support/harness.ts';

const KEY = 'sk-test-SECRET-0123456789abcdef';

/** Every string and payload byte of a history, as text (payloads are bytes, not JSON strings). */
function historyText(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') return Object.values(value).map(historyText).join('\n');
  return '';
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath, d.name));
}

describe('worker process: metrics and secrets', () => {
  let h: Harness;
  let worker: ChildProcess;
  let logs = '';
  let metricsPort: number;
  beforeAll(async () => {
    h = await startHarness({ apiKey: KEY, inProcessWorker: false });
    metricsPort = await freePort();
    worker = h.spawnWorker({ BATCHPILOT_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`, LOG_LEVEL: 'debug' });
    worker.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
    worker.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  });
  afterAll(async () => {
    await stopProcess(worker);
    await h.close();
  });

  it('serves batchpilot metrics and never shows the key', async () => {
    const input = writeChatInput(h.dataDir, 'secret.jsonl', 30);
    const jobId = `secret-${Date.now()}`;
    const summary = (await h.client.workflow.execute(JOB_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: jobId,
      args: [
        {
          input,
          outDir: 'out-secret',
          options: jobOptions({ limits: { maxLines: 10, maxBytes: 500_000_000, maxLineBytes: 6_000_000 } }),
        },
      ],
    })) as JobSummary;
    expect(summary.lines.succeeded).toBe(30);

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/batchpilot_batches_created\S*\s+3\b/m);
    expect(metrics).toMatch(/batchpilot_lines_succeeded\S*\s+30\b/m);
    expect(metrics).toMatch(/batchpilot_polls/);
    expect(metrics).toMatch(/temporal_/);

    expect(logs.length).toBeGreaterThan(0);
    expect(logs).toContain('created batch');
    expect(logs).not.toContain(KEY);
    for (const id of [jobId, unitWorkflowId(jobId, 1, 0), unitWorkflowId(jobId, 1, 2)]) {
      const history = await h.client.workflow.getHandle(id).fetchHistory();
      const text = historyText(history);
      // The decoding works: the job's own input path is readable in its history.
      if (id === jobId) expect(text).toContain(input);
      expect(text).not.toContain(KEY);
    }
    for (const file of filesUnder(path.join(h.dataDir, 'out-secret')))
      expect(fs.readFileSync(file, 'utf8'), file).not.toContain(KEY);
  });
});
