// A secured Temporal, for real: certificates made by openssl here, HAProxy (Debian's haproxy,
// installed by scripts/setup.sh) terminating TLS in front of the shared dev server, once with server
// TLS only and once requiring a client certificate signed by our CA. Not stunnel or socat: they
// cannot offer ALPN "h2", and the worker's gRPC client (Temporal Core, Rust) refuses a TLS
// connection without it (H2NotNegotiated). The CLI and a `batchpilot
// worker` process connect through it with the TEMPORAL_TLS* variables or a profile file; a client
// without the right certificate is refused with a message that names what to check.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { main } from '../../client/cli.ts';
import { freePort, stopProcess } from '../../worker/dev-server.ts';
import { startHarness, writeChatInput, type Harness } from '../support/harness.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-tls-'));
const f = (name: string) => path.join(dir, name);

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, and leaf certificates it signs (EC keys: quick to make). */
function makeCa(name: string): void {
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}
function makeLeaf(name: string, ca: string, cn: string, ext: string): void {
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  fs.writeFileSync(
    f(`${name}.ext`),
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n${ext}\n`,
  );
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    `${name}.pem`,
    '-extfile',
    `${name}.ext`,
  ]);
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`haproxy did not listen on ${port}`);
}

async function cli(args: string[], env: Record<string, string>) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const plain = { ...process.env };
  for (const k of Object.keys(plain))
    if (k.startsWith('TEMPORAL_') && k !== 'TEMPORAL_CLI_PATH') delete plain[k];
  const code = await main(args, { stdout, stderr, env: { ...plain, ...env } });
  return { code, stdout: out, stderr: err };
}

describe('Temporal over TLS and mTLS', () => {
  let h: Harness;
  let proxy: ChildProcess;
  let tlsAddress: string;
  let mtlsAddress: string;
  let jobId: string;
  let server: Record<string, string>;
  let mtls: Record<string, string>;

  beforeAll(async () => {
    makeCa('ca');
    makeLeaf(
      'server',
      'ca',
      'temporal.test',
      'subjectAltName=DNS:temporal.test\nextendedKeyUsage=serverAuth',
    );
    makeLeaf('client', 'ca', 'batchpilot-worker', 'extendedKeyUsage=clientAuth');
    makeCa('rogue-ca');
    makeLeaf('rogue', 'rogue-ca', 'batchpilot-worker', 'extendedKeyUsage=clientAuth');
    const [tlsPort, mtlsPort] = [await freePort(), await freePort()];
    tlsAddress = `127.0.0.1:${tlsPort}`;
    mtlsAddress = `127.0.0.1:${mtlsPort}`;
    const upstream = inject('temporalAddress');
    fs.writeFileSync(
      f('server-bundle.pem'),
      fs.readFileSync(f('server.pem'), 'utf8') + fs.readFileSync(f('server.key'), 'utf8'),
    );
    const crt = `ssl crt ${f('server-bundle.pem')} alpn h2`;
    fs.writeFileSync(
      f('haproxy.cfg'),
      [
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 1h',
        '  timeout server 1h',
        'frontend tls',
        `  bind ${tlsAddress} ${crt}`,
        '  default_backend temporal',
        'frontend mtls',
        `  bind ${mtlsAddress} ${crt} ca-file ${f('ca.pem')} verify required`,
        '  default_backend temporal',
        'backend temporal',
        `  server dev ${upstream}`,
        '',
      ].join('\n'),
    );
    proxy = spawn('haproxy', ['-f', f('haproxy.cfg'), '-db'], { stdio: 'ignore' });
    await waitForPort(tlsPort);
    await waitForPort(mtlsPort);

    h = await startHarness({ inProcessWorker: false });
    server = {
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: f('ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
      BATCHPILOT_TASK_QUEUE: h.taskQueue,
      BATCHPILOT_DATA_DIR: h.dataDir,
    };
    mtls = {
      ...server,
      TEMPORAL_ADDRESS: mtlsAddress,
      TEMPORAL_TLS_CLIENT_CERT_PATH: f('client.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: f('client.key'),
    };
  });

  afterAll(async () => {
    await h?.close();
    if (proxy) await stopProcess(proxy);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs a job with the CLI and a worker process both on mTLS, and logs no secret', async () => {
    // An API key too (the dev server ignores it): it and the key file must stay out of the logs,
    // even at debug level.
    const worker = h.spawnWorker({
      ...Object.fromEntries(Object.entries(mtls).filter(([k]) => k.startsWith('TEMPORAL_'))),
      TEMPORAL_API_KEY: 'tls-test-api-key-123',
      LOG_LEVEL: 'debug',
    });
    let workerLog = '';
    worker.stderr?.on('data', (d: Buffer) => (workerLog += d.toString()));
    try {
      const input = writeChatInput(h.dataDir, 'tls.jsonl', 4);
      jobId = `tls-job-${Date.now()}`;
      const r = await cli(
        ['start', input, '--out', 'tls-out', '--id', jobId, '--poll-interval', '200ms', '--wait'],
        mtls,
      );
      expect(r.code, r.stderr + workerLog).toBe(0);
      expect(r.stdout).toContain('4 succeeded');
    } finally {
      await stopProcess(worker);
    }
    expect(workerLog).toContain('"connection":"mTLS, own server CA, server name temporal.test, API key"');
    expect(workerLog).not.toContain('tls-test-api-key-123');
    expect(workerLog).not.toContain(fs.readFileSync(f('client.key'), 'utf8').split('\n')[1]!);
  });

  it('reads the job with `status` over server TLS, with the server name checked', async () => {
    const ok = await cli(['status', jobId], { ...server, TEMPORAL_ADDRESS: tlsAddress });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`job ${jobId} completed`);
    // The certificate is for temporal.test: another expected name fails verification.
    const wrongName = await cli(['status', jobId], {
      ...server,
      TEMPORAL_ADDRESS: tlsAddress,
      TEMPORAL_TLS_SERVER_NAME: 'elsewhere.test',
    });
    expect(wrongName.code).toBe(2);
    expect(wrongName.stderr).toContain(`cannot connect to Temporal at ${tlsAddress}`);
  });

  it('refuses a client without a certificate, or with one our CA did not sign', async () => {
    const none = await cli(['status', jobId], { ...server, TEMPORAL_ADDRESS: mtlsAddress });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`cannot connect to Temporal at ${mtlsAddress} (TLS, own server CA`);
    expect(none.stderr).toContain('TEMPORAL_TLS_CLIENT_CERT_PATH');
    const rogue = await cli(['status', jobId], {
      ...mtls,
      TEMPORAL_TLS_CLIENT_CERT_PATH: f('rogue.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: f('rogue.key'),
    });
    expect(rogue.code).toBe(2);
    expect(rogue.stderr).toContain(`cannot connect to Temporal at ${mtlsAddress} (mTLS`);
    // Plaintext against a TLS port fails too, and the message says to check the TLS settings.
    const plain = await cli(['status', jobId], { TEMPORAL_ADDRESS: mtlsAddress });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('TEMPORAL_TLS');
  });

  it('runs `run` on the configured mTLS server (client and in-process worker) instead of an embedded one', async () => {
    writeChatInput(h.dataDir, 'tls-run.jsonl', 3);
    const r = await cli(
      ['run', 'tls-run.jsonl', '--out', 'tls-run-out', '--id', `tls-run-${Date.now()}`],
      mtls,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('embedded Temporal dev server');
    expect(r.stdout).toContain('3 succeeded');
  });

  it('connects with mTLS from a profile file (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE)', async () => {
    fs.writeFileSync(
      f('temporal.toml'),
      [
        '[profile.secure]',
        `address = "${mtlsAddress}"`,
        '[profile.secure.tls]',
        'server_name = "temporal.test"',
        `server_ca_cert_path = "${f('ca.pem')}"`,
        `client_cert_path = "${f('client.pem')}"`,
        `client_key_path = "${f('client.key')}"`,
        '',
      ].join('\n'),
    );
    const r = await cli(['status', jobId, '--json'], {
      TEMPORAL_CONFIG_FILE: f('temporal.toml'),
      TEMPORAL_PROFILE: 'secure',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'COMPLETED', summary: { lines: { succeeded: 4 } } });
  });
});
