// A throwaway S3-compatible server for the fleet tier's tests: versitygw on a free port, its bucket
// root and logs in the test's folder, with fresh credentials.
import { fleetBinaries } from '../../scripts/fleet/binaries.ts';
import { anyFreePort } from '../../scripts/fleet/ports.ts';
import { newCredentials, startObjectStore, type ObjectStore as Server } from '../../scripts/fleet/s3.ts';
import type { ObjectStoreOptions } from '../../storage/s3.ts';

export type { Server };

export async function startTestObjectServer(dir: string): Promise<Server> {
  return startObjectStore({
    bin: fleetBinaries().versitygw,
    root: dir,
    port: await anyFreePort(),
    logDir: dir,
    credentials: newCredentials(),
  });
}

/** How a client of the store reaches `server` as its owner. */
export function clientOptionsOf(server: Server): ObjectStoreOptions {
  return {
    env: { AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: server.region },
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  };
}
