// Traces as an operator turns them on: `batchpilot run` with OTEL_EXPORTER_OTLP_ENDPOINT pointing at
// an OTLP/HTTP receiver written here (node:http, JSON), a real Temporal dev server and the emulator
// over HTTP. The spans of the client's start, the workflows, the activities and the provider calls
// must arrive in one trace, and neither the key nor a request's content may be in them.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../emulator/index.ts';
import { cliEnv, startCli } from '../support/cli-process.ts';
import { readJsonl, writeChatInput } from '../support/harness.ts';

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: OtlpValue }[];
}
interface OtlpBody {
  resourceSpans: {
    resource: { attributes: { key: string; value: OtlpValue }[] };
    scopeSpans: { spans: OtlpSpan[] }[];
  }[];
}

const SECRET = 'sk-traces-test-secret-0123456789';
const LINES = 30;

function attr(span: OtlpSpan, key: string): string | number | boolean | undefined {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if (v.intValue !== undefined) return Number(v.intValue);
  return v.stringValue ?? v.boolValue;
}

describe('traces over OTLP/HTTP', () => {
  let dir: string;
  let emulator: RunningEmulator;
  let receiver: http.Server;
  let receiverUrl: string;
  const bodies: string[] = [];
  const requests: { path: string; contentType: string | undefined }[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-traces-'));
    emulator = await startEmulator({ port: 0, dataDir: path.join(dir, '.emulator-state') });
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push({ path: req.url ?? '', contentType: req.headers['content-type'] });
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    writeChatInput(dir, 'in.jsonl', LINES);
  });
  afterAll(async () => {
    await emulator.close();
    await new Promise((resolve) => receiver.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a job run sends spans for start, workflows, activities and provider calls in one trace', async () => {
    const cli = startCli(
      ['run', 'in.jsonl', '--out', 'out', '--max-lines', '10', '--poll-interval', '200ms'],
      {
        cwd: dir,
        env: cliEnv({
          TEMPORAL_ADDRESS: inject('temporalAddress'),
          BATCHPILOT_PROVIDER: 'emulator',
          BATCHPILOT_BASE_URL: emulator.url,
          BATCHPILOT_API_KEY: SECRET,
          BATCHPILOT_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
          OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
          OTEL_SERVICE_NAME: 'batchpilot-traces-test',
          LOG_LEVEL: 'warn',
        }),
      },
    );
    const { code } = await cli.exit;
    expect(code, cli.stderr()).toBe(0);
    expect(readJsonl(path.join(dir, 'out', 'results.jsonl'))).toHaveLength(LINES);

    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) {
      expect(r.path).toBe('/v1/traces');
      expect(r.contentType).toMatch(/application\/json/);
    }
    const parsed = bodies.map((b) => JSON.parse(b) as OtlpBody);
    const services = parsed.flatMap((b) =>
      b.resourceSpans.map(
        (rs) => rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue,
      ),
    );
    expect(new Set(services)).toEqual(new Set(['batchpilot-traces-test']));
    const spans = parsed.flatMap((b) =>
      b.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)),
    );

    const start = spans.find((s) => s.name.startsWith('StartWorkflow:'));
    expect(start, spans.map((s) => s.name).join(', ')).toBeDefined();
    const trace = spans.filter((s) => s.traceId === start!.traceId);
    const names = trace.map((s) => s.name);
    // The job workflow and its shard children, their activities, and the provider's routes.
    const workflows = new Set(names.filter((n) => n.startsWith('RunWorkflow:')));
    expect(workflows.size, names.join(', ')).toBeGreaterThanOrEqual(2);
    expect(
      names.some((n) => n.startsWith('RunActivity:')),
      names.join(', '),
    ).toBe(true);
    const provider = trace.filter((s) => attr(s, 'batchpilot.provider.route') !== undefined);
    const routes = new Set(provider.map((s) => attr(s, 'batchpilot.provider.route')));
    // Batches are polled by the task queue's watcher, a workflow of its own (its list calls are not
    // in this job's trace), so a clean run has no retrieve.
    for (const route of ['upload', 'create', 'content']) expect(routes, route).toContain(route);
    const create = provider.find((s) => attr(s, 'batchpilot.provider.route') === 'create')!;
    expect(create.name).toBe('provider create');
    expect(attr(create, 'http.request.method')).toBe('POST');
    expect(attr(create, 'http.response.status_code')).toBe(200);
    // A provider span hangs under an activity's span, not loose in the trace.
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    expect(byId.get(create.parentSpanId ?? '')?.name).toMatch(/^RunActivity:/);

    const everything = bodies.join('\n');
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain('question 7');
  });
});
