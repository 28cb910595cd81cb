// `batchpilot codec-server` read by the real `temporal` CLI: an encrypted job's history shows
// ciphertext without it and plaintext through `--codec-endpoint`; CORS answers the Web UI's origin,
// and the Authorization check, a wrong key and a bad body each get a clear refusal.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { main } from '../../client/cli.ts';
import { startCodecServer, type RunningCodecServer } from '../../client/codec-server.ts';
import { AesGcmCodec } from '../../common/codec.ts';
import { findTemporalCli } from '../../worker/temporal-cli.ts';
import { startHarness, writeChatInput, type Harness } from '../support/harness.ts';

const KEY = 'fedcba9876543210'.repeat(4);
const AUTH = 'Bearer codec-test-token';
const UI = 'http://localhost:8233';
/** `workflow show -o json` prints metadata as base64. */
const ENCRYPTED_B64 = Buffer.from('binary/encrypted').toString('base64');

describe('codec server', () => {
  let h: Harness;
  let codec: RunningCodecServer;
  beforeAll(async () => {
    h = await startHarness({ codecKey: KEY });
    codec = await startCodecServer({
      codec: new AesGcmCodec(KEY),
      port: 0,
      host: '127.0.0.1',
      corsOrigins: [UI],
      authorization: AUTH,
      logger: pino({ level: 'silent' }),
    });
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      BATCHPILOT_TASK_QUEUE: h.taskQueue,
      BATCHPILOT_DATA_DIR: h.dataDir,
      BATCHPILOT_CODEC_KEY: KEY,
    };
    const input = writeChatInput(h.dataDir, 'secret-prompts.jsonl', 5);
    const out = new PassThrough();
    const code = await main(
      [
        'start',
        input,
        '--out',
        'secret-out',
        '--id',
        'codec-server-job',
        '--poll-interval',
        '200ms',
        '--wait',
      ],
      { stdout: out, stderr: new PassThrough(), env },
    );
    expect(code).toBe(0);
  });
  afterAll(async () => {
    await codec?.close();
    await h?.close();
  });

  /** Every payload's data in the history `workflow show -o json` printed (base64 there), decoded. */
  function payloadText(json: string): string {
    const out: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object')
        for (const [k, x] of Object.entries(v))
          if (k === 'data' && typeof x === 'string') out.push(Buffer.from(x, 'base64').toString('latin1'));
          else walk(x);
    };
    walk(JSON.parse(json));
    return out.join('\n');
  }

  // Asynchronous: the codec server answers the CLI from this same process.
  async function show(extra: string[]) {
    const r = await promisify(execFile)(
      findTemporalCli()!,
      [
        'workflow',
        'show',
        '--workflow-id',
        'codec-server-job',
        '--address',
        inject('temporalAddress'),
        '-o',
        'json',
        ...extra,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    return { stdout: r.stdout, stderr: r.stderr };
  }

  it('lets `temporal workflow show --codec-endpoint` read the encrypted history', async () => {
    const raw = await show([]);
    expect(raw.stdout).toContain(ENCRYPTED_B64);
    expect(payloadText(raw.stdout)).not.toContain('secret-out');

    const decoded = await show(['--codec-endpoint', codec.url, '--codec-auth', AUTH]);
    expect(decoded.stdout).not.toContain(ENCRYPTED_B64);
    // The job's argument, its Web UI summary and its result, in plain text.
    const text = payloadText(decoded.stdout);
    expect(text).toContain('"input":"secret-prompts.jsonl"');
    expect(text).toContain('batchpilot job: secret-prompts.jsonl');
    expect(text).toMatch(/"succeeded":5/);
  });

  it("answers the Web UI origin's preflight and refuses other origins", async () => {
    const ok = await fetch(`${codec.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        Origin: UI,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-namespace,authorization',
      },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI);
    expect(ok.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/i);
    const other = await fetch(`${codec.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example' },
    });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('round-trips /encode and /decode, and refuses a missing token, a bad body and a wrong key', async () => {
    const post = (route: string, body: unknown, auth: string | null = AUTH) =>
      fetch(`${codec.url}${route}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-Namespace': 'default',
          ...(auth ? { Authorization: auth } : {}),
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    const plain = {
      metadata: { encoding: Buffer.from('json/plain').toString('base64') },
      data: Buffer.from('"hello"').toString('base64'),
    };
    const enc = await post('/encode', { payloads: [plain] });
    expect(enc.status).toBe(200);
    const encoded = (await enc.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    expect(Buffer.from(encoded.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(
      'binary/encrypted',
    );
    expect(Buffer.from(encoded.payloads[0]!.data, 'base64').toString('latin1')).not.toContain('hello');
    const dec = await post('/decode', encoded);
    expect(await dec.json()).toEqual({ payloads: [plain] });

    expect((await post('/decode', encoded, null)).status).toBe(401);
    const bad = await post('/decode', 'not json');
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('payloads');

    const otherKey = await startCodecServer({
      codec: new AesGcmCodec('0'.repeat(64)),
      port: 0,
      host: '127.0.0.1',
      corsOrigins: [],
      logger: pino({ level: 'silent' }),
    });
    try {
      const wrong = await fetch(`${otherKey.url}/decode`, { method: 'POST', body: JSON.stringify(encoded) });
      expect(wrong.status).toBe(400);
      expect(await wrong.text()).toContain('cannot decode');
    } finally {
      await otherKey.close();
    }
  });
});
