// S3-compatible object storage (AWS S3, Alibaba Cloud OSS, MinIO, Ceph, versitygw) as the few
// operations a job's files need: streamed writes that commit once, streamed and ranged reads,
// existence, listing by prefix and deletion. Configuration is the AWS SDK's own (AWS_ENDPOINT_URL,
// AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or any other source of its credential
// chain); batchpilot adds only path-style addressing whenever an endpoint is set, because
// self-hosted servers answer on one host name rather than one per bucket.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

/** A bucket and a key (or, for a folder, a key prefix ending in `/` or empty). */
export interface S3Location {
  bucket: string;
  key: string;
}

const S3_URI = /^s3:\/\/([^/]+)(?:\/(.*))?$/;

export const isS3Uri = (s: string): boolean => s.startsWith('s3://');

/** `s3://bucket/some/key` → its bucket and key; a clear error for anything else. */
export function parseS3Uri(uri: string): S3Location {
  const m = S3_URI.exec(uri);
  // Bucket names: 3 to 63 lower-case letters, digits, dots and hyphens (the S3 rule every
  // compatible server follows); checked here so a typo fails before any request.
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(m[1]!))
    throw new Error(`"${uri}" is not an S3 location: write s3://<bucket>/<key> (bucket in lower case)`);
  return { bucket: m[1]!, key: m[2] ?? '' };
}

export const s3Uri = (loc: S3Location): string => `s3://${loc.bucket}/${loc.key}`;

/** A key as the prefix of the keys under it: ending in `/`, or empty at the bucket's root. */
export const keyPrefix = (key: string): string => key.replace(/\/?$/, '/').replace(/^\/$/, '');

/**
 * Multipart part size: S3 allows 10,000 parts, so a stream of unknown length with the SDK's 5 MiB
 * default tops out near 48.8 GiB. 64 MiB parts allow ~640 GiB (a 90 GB object is ~1,350 parts),
 * and with two parts in flight an upload holds at most 128 MiB.
 */
export const PART_SIZE = 64 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

/**
 * Sockets per client, shared by every step of the worker. The merge reads many shards at once by
 * ranged GETs, at most two in flight per input (its lines and its line numbers), each ending when
 * its chunk is read (storage/byte-io.ts): so no socket is held while its reader waits. Its fan-in
 * is kept under half of this (activities/merge-kway.ts), so every GET finds a socket. The SDK's
 * default of 50 would serialize a merge of hundreds of inputs behind 50 round trips at a time.
 */
export const MAX_SOCKETS = 1_024;

export interface ObjectInfo {
  key: string;
  size: number;
}

export interface ObjectStoreOptions {
  /** The environment to read AWS_ENDPOINT_URL / AWS_REGION from (the SDK reads credentials itself). */
  env?: NodeJS.ProcessEnv;
  /** Overrides for tests and tools; normally the environment decides. */
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Thrown by `putIfAbsent`-style writes when the object already exists. */
export class ObjectExistsError extends Error {
  override name = 'ObjectExistsError';
}

export class ObjectStore {
  readonly client: S3Client;

  constructor(opts: ObjectStoreOptions = {}) {
    const env = opts.env ?? process.env;
    const endpoint = opts.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS };
    this.client = new S3Client({
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      region: opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      requestHandler: { httpAgent: new HttpAgent(agentOptions), httpsAgent: new HttpsAgent(agentOptions) },
    });
  }

  /**
   * Writes `body` to `loc` so that readers see the whole object or nothing (S3 commits a PUT or a
   * multipart upload atomically). With `ifAbsent`, the write commits only where no object exists
   * (`If-None-Match: *`), and an existing one raises ObjectExistsError: a retried step can never
   * replace an object another attempt committed.
   */
  async write(
    loc: S3Location,
    body: Readable | Buffer | string,
    opts: { ifAbsent?: boolean } = {},
  ): Promise<void> {
    const conditional = opts.ifAbsent ? { IfNoneMatch: '*' } : {};
    try {
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        await this.client.send(
          new PutObjectCommand({ Bucket: loc.bucket, Key: loc.key, Body: body, ...conditional }),
        );
        return;
      }
      const upload = new Upload({
        client: this.client,
        params: { Bucket: loc.bucket, Key: loc.key, Body: body, ...conditional },
        partSize: PART_SIZE,
        queueSize: PARTS_IN_FLIGHT,
        leavePartsOnError: false,
      });
      await upload.done();
    } catch (err) {
      if (opts.ifAbsent && isPreconditionFailed(err))
        throw new ObjectExistsError(`${s3Uri(loc)} already exists`, { cause: err });
      throw describeS3Error(err, `write ${s3Uri(loc)}`);
    }
  }

  /** The object's bytes as a stream; `range` is inclusive on both ends, as HTTP's. */
  async read(loc: S3Location, range?: { start: number; end?: number }): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: loc.bucket,
          Key: loc.key,
          ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}),
        }),
      );
      return res.Body as Readable;
    } catch (err) {
      throw describeS3Error(err, `read ${s3Uri(loc)}`);
    }
  }

  /** The object's size, or undefined when there is none. */
  async size(loc: S3Location): Promise<number | undefined> {
    return (await this.stat(loc))?.size;
  }

  /** The object's size and last modification time, or undefined when there is none. */
  async stat(loc: S3Location): Promise<{ size: number; mtimeMs: number } | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      return { size: res.ContentLength ?? 0, mtimeMs: res.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw describeS3Error(err, `look up ${s3Uri(loc)}`);
    }
  }

  /** Every object under `prefix`, in key order, a page (up to 1,000) at a time. */
  async *list(prefix: S3Location): AsyncGenerator<ObjectInfo> {
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({ Bucket: prefix.bucket, Prefix: prefix.key, ContinuationToken: token }),
        );
      } catch (err) {
        throw describeS3Error(err, `list ${s3Uri(prefix)}`);
      }
      for (const o of res.Contents ?? []) yield { key: o.Key!, size: o.Size ?? 0 };
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(loc: S3Location): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
    } catch (err) {
      throw describeS3Error(err, `delete ${s3Uri(loc)}`);
    }
  }

  close(): void {
    this.client.destroy();
  }
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

const isPreconditionFailed = (err: unknown) =>
  httpStatus(err) === 412 || (err as { name?: string }).name === 'PreconditionFailed';

/** The object is not there: the SDK's error, or one of ours that wraps it (its `cause`). */
export function isNotFound(err: unknown): boolean {
  for (let e = err; e; e = (e as { cause?: unknown }).cause)
    if (httpStatus(e) === 404 || ['NotFound', 'NoSuchKey'].includes((e as { name?: string }).name ?? ''))
      return true;
  return false;
}

/** What to tell a user for an S3 error: the server's own code and message, and what to check. */
function describeS3Error(err: unknown, what: string): Error {
  const status = httpStatus(err);
  const code = err instanceof S3ServiceException ? err.name : (err as Error).name;
  const message = (err as Error).message;
  const hint =
    status === 403
      ? ': check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy'
      : code === 'NoSuchBucket'
        ? ': create the bucket, or fix the name in the s3:// location'
        : status === undefined
          ? ': check AWS_ENDPOINT_URL and that the server is reachable'
          : '';
  return new Error(`cannot ${what}: ${code}${status ? ` (HTTP ${status})` : ''}: ${message}${hint}`, {
    cause: err,
  });
}
