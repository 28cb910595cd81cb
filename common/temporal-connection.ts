// Where and how to reach Temporal, read the way the `temporal` CLI and every Temporal SDK read it
// (Temporal's client environment configuration): the profile file (TEMPORAL_CONFIG_FILE, else
// ~/.config/temporalio/temporal.toml; profile TEMPORAL_PROFILE, else "default"), then
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TEMPORAL_TLS* over it. The parsing is
// @temporalio/envconfig's own, so the semantics cannot drift from the SDK's; what this module adds
// is errors that name the variable to fix. An API key or key file's content is kept only in the
// returned object, which is never logged (see `describeConnection`).
import fs from 'node:fs';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';

export type TlsSetting = NonNullable<ReturnType<typeof toClientOptions>['connectionOptions']['tls']>;

export interface TemporalConnectionSettings {
  /** Undefined when neither the environment nor a profile names a server (`run` embeds one). */
  address: string | undefined;
  namespace: string | undefined;
  apiKey: string | undefined;
  /** TLS options (certificates already read), `true` for TLS with the system's roots, or off. */
  tls: TlsSetting | undefined;
  /** gRPC headers from the profile's `grpc_meta` or TEMPORAL_GRPC_META_*. */
  metadata: Record<string, string> | undefined;
}

const PATH_VARIABLES = [
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_CONFIG_FILE',
] as const;

/** Reads the Temporal connection settings; throws an Error whose message names what to fix. */
export function loadTemporalConnection(env: Record<string, string>): TemporalConnectionSettings {
  for (const name of PATH_VARIABLES) {
    const file = env[name];
    if (file !== undefined && !readable(file))
      throw new Error(`${name}: cannot read "${file}" (set it to a readable file, or unset it)`);
  }
  if (env.TEMPORAL_TLS !== undefined && !['true', 'false', '1', '0'].includes(env.TEMPORAL_TLS))
    throw new Error(`TEMPORAL_TLS: "${env.TEMPORAL_TLS}" must be true or false`);
  const where = env.TEMPORAL_CONFIG_FILE ? ` (profile file ${env.TEMPORAL_CONFIG_FILE})` : '';
  let options;
  try {
    const profile = loadClientConfigProfile({ overrideEnvVars: env });
    // envconfig silently drops a certificate without its key (or the reverse): say so instead.
    if (!!profile.tls?.clientCert !== !!profile.tls?.clientKey)
      throw new HalfPairError(
        `TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH${where}: mTLS needs both the client certificate and its key`,
      );
    options = toClientOptions(profile);
  } catch (err) {
    if (err instanceof HalfPairError) throw err;
    const message = (err as Error).message;
    if (/Profile '.*' not found/.test(message))
      throw new Error(
        `TEMPORAL_PROFILE: ${message}${where}: name a [profile.<name>] table of the file, or unset it`,
      );
    throw new Error(`Temporal connection settings${where}: ${message}`);
  }
  const c = options.connectionOptions;
  const tls = c.tls ?? undefined;
  return {
    address: c.address,
    namespace: options.namespace,
    apiKey: c.apiKey,
    tls,
    metadata: c.metadata as Record<string, string> | undefined,
  };
}

class HalfPairError extends Error {}

/** The settings as a log line or message may show them: the API key and certificates never. */
export function describeConnection(s: Pick<TemporalConnectionSettings, 'tls' | 'apiKey'>): string {
  const parts: string[] = [];
  if (s.tls === undefined || s.tls === false) parts.push('plaintext');
  else if (s.tls === true) parts.push('TLS');
  else {
    parts.push(s.tls.clientCertPair ? 'mTLS' : 'TLS');
    if (s.tls.serverRootCACertificate) parts.push('own server CA');
    if (s.tls.serverNameOverride) parts.push(`server name ${s.tls.serverNameOverride}`);
  }
  if (s.apiKey) parts.push('API key');
  return parts.join(', ');
}

function readable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
