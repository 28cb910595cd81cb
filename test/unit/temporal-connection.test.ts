// The Temporal connection settings as the `temporal` CLI reads them: a TOML profile file, the
// environment over it, and errors that name the variable to fix. (TLS itself: test/integration/tls.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../common/config.ts';
import { describeConnection } from '../../common/temporal-connection.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-envconfig-'));
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
};
const ca = write('ca.pem', '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n');
const crt = write('client.pem', '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n');
const key = write('client.key', '-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n');
const toml = write(
  'temporal.toml',
  `[profile.default]
address = "default-host:7233"

[profile.prod]
address = "prod.example.com:7233"
namespace = "batch-prod"

[profile.prod.tls]
server_name = "prod.internal"
server_ca_cert_path = "${ca}"
client_cert_path = "${crt}"
client_key_path = "${key}"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "secret-api-key"
`,
);

describe('Temporal connection settings', () => {
  it('takes no server and the default namespace when nothing is configured', () => {
    const t = loadConfig({}).temporal;
    expect(t).toMatchObject({ address: undefined, namespace: 'default', tls: undefined });
    expect(describeConnection(t)).toBe('plaintext');
  });

  it('reads the default profile of TEMPORAL_CONFIG_FILE, and TEMPORAL_PROFILE picks another', () => {
    expect(loadConfig({ TEMPORAL_CONFIG_FILE: toml }).temporal.address).toBe('default-host:7233');
    const t = loadConfig({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' }).temporal;
    expect(t.address).toBe('prod.example.com:7233');
    expect(t.namespace).toBe('batch-prod');
    const tls = t.tls as {
      serverNameOverride?: string;
      serverRootCACertificate?: Buffer;
      clientCertPair?: { crt: Buffer; key: Buffer };
    };
    expect(tls.serverNameOverride).toBe('prod.internal');
    expect(Buffer.from(tls.serverRootCACertificate!).toString()).toContain('ca');
    expect(Buffer.from(tls.clientCertPair!.key).toString()).toContain('PRIVATE KEY');
    expect(describeConnection(t)).toBe('mTLS, own server CA, server name prod.internal');
  });

  it('lets the environment win over the profile, as the temporal CLI does', () => {
    const t = loadConfig({
      TEMPORAL_CONFIG_FILE: toml,
      TEMPORAL_PROFILE: 'prod',
      TEMPORAL_ADDRESS: 'other:7233',
      TEMPORAL_NAMESPACE: 'other-ns',
      TEMPORAL_TLS_SERVER_NAME: 'other.internal',
    }).temporal;
    expect(t).toMatchObject({ address: 'other:7233', namespace: 'other-ns' });
    expect((t.tls as { serverNameOverride?: string }).serverNameOverride).toBe('other.internal');
  });

  it('turns TLS on for an API key, and never shows the key', () => {
    const t = loadConfig({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'cloud' }).temporal;
    expect(t.apiKey).toBe('secret-api-key');
    expect(t.tls).toBe(true);
    expect(describeConnection(t)).toBe('TLS, API key');
    expect(describeConnection(t)).not.toContain('secret');
  });

  it('reads TLS from the TEMPORAL_TLS* variables alone', () => {
    expect(loadConfig({ TEMPORAL_TLS: 'true' }).temporal.tls).toBeTruthy();
    expect(loadConfig({ TEMPORAL_TLS: 'false' }).temporal.tls).toBe(false);
    const t = loadConfig({
      TEMPORAL_ADDRESS: 'h:7233',
      TEMPORAL_TLS_CLIENT_CERT_PATH: crt,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
    }).temporal;
    expect(describeConnection(t)).toBe('mTLS, own server CA');
  });

  it('names the variable to fix', () => {
    expect(() => loadConfig({ TEMPORAL_CONFIG_FILE: path.join(dir, 'nope.toml') })).toThrow(
      /TEMPORAL_CONFIG_FILE: cannot read/,
    );
    expect(() => loadConfig({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging' })).toThrow(
      /TEMPORAL_PROFILE: .*staging/,
    );
    expect(() => loadConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: crt })).toThrow(
      /TEMPORAL_TLS_CLIENT_KEY_PATH.*needs both/,
    );
    expect(() => loadConfig({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'missing.pem') })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ TEMPORAL_TLS: 'yes' })).toThrow(/TEMPORAL_TLS: "yes" must be true or false/);
  });
});
