// versitygw: S3-compatible object storage on a folder (posix backend: a bucket is a folder, an object
// a file; the filesystem needs extended attributes, which ext4 and tmpfs have). The root credentials
// come from the caller (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the fleet's CLI) or are made up
// per fleet; they reach versitygw through its environment, never its command line.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mustExist } from './binaries.ts';
import { startProcess, waitUntil, type FleetProcess } from './processes.ts';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ObjectStore extends S3Credentials {
  /** `http://127.0.0.1:<port>`; clients need path-style addressing. */
  endpoint: string;
  region: string;
  /** The folder that holds the buckets. */
  root: string;
  process: FleetProcess;
  stop(): Promise<void>;
}

export function newCredentials(): S3Credentials {
  return {
    accessKeyId: `fleet${crypto.randomBytes(6).toString('hex')}`,
    secretAccessKey: crypto.randomBytes(24).toString('base64url'),
  };
}

export async function startObjectStore(opts: {
  bin: string;
  root: string;
  port: number;
  logDir: string;
  credentials: S3Credentials;
}): Promise<ObjectStore> {
  mustExist('versitygw', opts.bin);
  const root = path.join(opts.root, 's3');
  fs.mkdirSync(root, { recursive: true });
  const region = 'us-east-1';
  const proc = startProcess(
    'versitygw',
    opts.bin,
    ['--port', `127.0.0.1:${opts.port}`, '-q', 'posix', root],
    opts.logDir,
    {
      env: {
        PATH: process.env.PATH,
        ROOT_ACCESS_KEY: opts.credentials.accessKeyId,
        ROOT_SECRET_KEY: opts.credentials.secretAccessKey,
        VGW_REGION: region,
      },
    },
  );
  const endpoint = `http://127.0.0.1:${opts.port}`;
  // Any S3 answer will do (an unsigned request is refused with 403): it means the server is up.
  await waitUntil(
    `versitygw on ${endpoint}`,
    async () => {
      const res = await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      return res.status === 403 || res.ok;
    },
    proc,
  );
  return { ...opts.credentials, endpoint, region, root, process: proc, stop: () => proc.stop() };
}

/**
 * What a worker or a user's shell needs to keep a job's data in `storage` (an `s3://bucket/prefix`
 * URI) on this server: the AWS SDK's own variables, the endpoint making addressing path-style.
 */
export function storageEnvironment(store: ObjectStore, storage: string): Record<string, string> {
  return {
    BATCHPILOT_STORAGE: storage,
    AWS_ENDPOINT_URL: store.endpoint,
    AWS_REGION: store.region,
    AWS_ACCESS_KEY_ID: store.accessKeyId,
    AWS_SECRET_ACCESS_KEY: store.secretAccessKey,
  };
}
