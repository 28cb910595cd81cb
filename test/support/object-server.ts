// A throwaway S3-compatible server for the fleet tier's tests: versitygw on a free port, its bucket
// root and logs in the test's folder, with fresh credentials; and the whole ground a test of jobs on
// object storage stands on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { fleetBinaries } from '../../scripts/fleet/binaries.ts';
import { anyFreePort } from '../../scripts/fleet/ports.ts';
import { newCredentials, startObjectStore, type ObjectStore as Server } from '../../scripts/fleet/s3.ts';
import { ObjectStore, type ObjectStoreOptions } from '../../storage/s3.ts';
import { startDevServer, type DevServer } from '../../worker/dev-server.ts';
import { bundleWorkflows } from '../../worker/workflow-bundle.ts';

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

/**
 * What a test of whole jobs on object storage stands on: a folder of its own, a Temporal dev
 * server, the workflow bundle, versitygw with `bucket` made, and the AWS_* environment set as a
 * deployed worker has it (pointing at `endpointFor(server)`: the server itself, or a stand-in in
 * front of it), put back by `close`.
 */
export interface ObjectTestBed {
  dir: string;
  temporal: DevServer;
  server: Server;
  bundlePath: string;
  close(): Promise<void>;
}

export async function startObjectTestBed(
  name: string,
  bucket: string,
  endpointFor: (server: Server) => Promise<string> = (s) => Promise.resolve(s.endpoint),
): Promise<ObjectTestBed> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `batchpilot-${name}-`));
  const temporal = await startDevServer({ headless: true });
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  fs.writeFileSync(bundlePath, (await bundleWorkflows()).code);
  const server = await startTestObjectServer(dir);
  const env = {
    AWS_ENDPOINT_URL: await endpointFor(server),
    AWS_REGION: server.region,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
  };
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  const objects = new ObjectStore();
  await objects.client.send(new CreateBucketCommand({ Bucket: bucket }));
  objects.close();
  return {
    dir,
    temporal,
    server,
    bundlePath,
    close: async () => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await server.stop();
      await temporal.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
