// Connecting to Temporal from the CLI, with a message that says how to get a server when none is
// reachable.
import { Client, Connection } from '@temporalio/client';
import { dataConverterFor } from '../common/codec.ts';
import type { Config } from '../common/config.ts';

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';

/** Thrown when no Temporal server answers; the CLI exits 2 with the hint. */
export class NoTemporalServerError extends Error {
  override name = 'NoTemporalServerError';
}

export async function connectClient(
  config: Config,
  address = config.temporal.address ?? DEFAULT_TEMPORAL_ADDRESS,
): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, connectTimeout: 3000 });
    await connection.workflowService.getSystemInfo({});
  } catch (err) {
    throw new NoTemporalServerError(
      `no Temporal server at ${address} (${(err as Error).message.split('\n')[0]}): start one with "batchpilot dev", or set TEMPORAL_ADDRESS; "batchpilot run" starts an embedded one by itself`,
    );
  }
  const dataConverter = dataConverterFor(config.codecKey);
  return new Client({
    connection,
    namespace: config.temporal.namespace,
    ...(dataConverter ? { dataConverter } : {}),
  });
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
