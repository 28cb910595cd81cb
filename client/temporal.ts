// Connecting to Temporal, for the CLI's client and for workers, from the one set of connection
// settings (common/temporal-connection.ts), with a message that says what to do when it fails.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { dataConverterFor } from '../common/codec.ts';
import type { Config } from '../common/config.ts';
import { describeConnection } from '../common/temporal-connection.ts';
import { startTracing } from '../common/tracing.ts';

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';

/** Thrown when no Temporal server answers; the CLI exits 2 with the hint. */
export class NoTemporalServerError extends Error {
  override name = 'NoTemporalServerError';
}

/** Options for `Connection.connect` and `NativeConnection.connect`: address, TLS, API key, headers. */
export function connectionOptions(
  config: Config,
  address = config.temporal.address ?? DEFAULT_TEMPORAL_ADDRESS,
) {
  const t = config.temporal;
  return {
    address,
    ...(t.tls !== undefined ? { tls: t.tls } : {}),
    ...(t.apiKey ? { apiKey: t.apiKey } : {}),
    ...(t.metadata ? { metadata: t.metadata } : {}),
  };
}

/** The error for a server that did not answer, with the fix that fits how we tried. */
function unreachable(config: Config, address: string, err: unknown): NoTemporalServerError {
  const cause = (err as Error).message.split('\n')[0];
  const how = describeConnection(config.temporal);
  if (how === 'plaintext')
    return new NoTemporalServerError(
      `no Temporal server at ${address} (${cause}): start one with "batchpilot dev", or set TEMPORAL_ADDRESS (and TEMPORAL_TLS*, TEMPORAL_API_KEY for a secured server); "batchpilot run" starts an embedded one by itself`,
    );
  return new NoTemporalServerError(
    `cannot connect to Temporal at ${address} (${how}): ${cause}. Check TEMPORAL_ADDRESS, TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME, TEMPORAL_TLS_CLIENT_CERT_PATH/TEMPORAL_TLS_CLIENT_KEY_PATH and TEMPORAL_API_KEY (or the TEMPORAL_CONFIG_FILE profile)`,
  );
}

export async function connectClient(
  config: Config,
  address = config.temporal.address ?? DEFAULT_TEMPORAL_ADDRESS,
): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(config, address), connectTimeout: 3000 });
    await connection.workflowService.getSystemInfo({});
  } catch (err) {
    throw unreachable(config, address, err);
  }
  const dataConverter = dataConverterFor(config.codecKey);
  // With tracing on, starting a workflow is a span whose context travels in the workflow's headers,
  // so the workflow's and its activities' spans join the same trace.
  const traced = startTracing(config.tracing) !== undefined;
  return new Client({
    connection,
    namespace: config.temporal.namespace,
    ...(dataConverter ? { dataConverter } : {}),
    ...(traced ? { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } } : {}),
  });
}

/** The worker's connection, with the same settings as the client's. */
export async function connectWorker(
  config: Config,
  address = config.temporal.address ?? DEFAULT_TEMPORAL_ADDRESS,
): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect(connectionOptions(config, address));
  } catch (err) {
    throw unreachable(config, address, err);
  }
}

/** Whether batchpilot's search attributes are registered on the namespace. */
export async function hasSearchAttributes(client: Client, names: string[]): Promise<boolean> {
  try {
    const res = await client.connection.operatorService.listSearchAttributes({
      namespace: client.options.namespace,
    });
    const have = new Set(Object.keys(res.customAttributes ?? {}));
    return names.every((n) => have.has(n));
  } catch {
    return false;
  }
}
