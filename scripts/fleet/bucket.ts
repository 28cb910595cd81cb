// The fleet's bucket as a person with the AWS SDK sees it: make it, put a file in it, list a prefix,
// and copy a prefix down to a folder to read the outputs with ordinary file tools. Uses the SDK
// directly rather than batchpilot's storage code, so a check made with it is independent of that code.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ObjectStore } from './s3.ts';

export class Bucket {
  readonly client: S3Client;
  readonly name: string;

  constructor(store: ObjectStore, name: string) {
    this.name = name;
    this.client = new S3Client({
      endpoint: store.endpoint,
      forcePathStyle: true,
      region: store.region,
      credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
    });
  }

  uri(key: string): string {
    return `s3://${this.name}/${key}`;
  }

  async create(): Promise<void> {
    await this.client.send(new CreateBucketCommand({ Bucket: this.name }));
  }

  /**
   * Uploads a local file: one PUT up to 1 GiB, a multipart upload of 64 MiB parts above it
   * (S3 refuses a single PUT over 5 GB, and a 10M-line bench input is ~9 GB).
   */
  async putFile(key: string, file: string): Promise<void> {
    const size = fs.statSync(file).size;
    if (size <= 1024 ** 3) {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: fs.createReadStream(file),
          ContentLength: size,
        }),
      );
      return;
    }
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.name, Key: key, Body: fs.createReadStream(file) },
      partSize: 64 * 1024 ** 2,
      queueSize: 2,
    });
    await upload.done();
  }

  /** One object's bytes as text (for small objects: summaries, markers). */
  async getText(key: string): Promise<string> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }));
    return res.Body!.transformToString('utf8');
  }

  /** Every object under `prefix`, with its size, in key order. */
  async list(prefix: string): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** Copies the objects directly under `prefix` (not deeper) into `dir`, by their last name. */
  async download(prefix: string, dir: string): Promise<string[]> {
    fs.mkdirSync(dir, { recursive: true });
    const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
    const names: string[] = [];
    for (const o of await this.list(base)) {
      const name = o.key.slice(base.length);
      if (name.includes('/')) continue;
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: o.key }));
      await pipeline(res.Body as Readable, fs.createWriteStream(path.join(dir, name)));
      names.push(name);
    }
    return names;
  }

  close(): void {
    this.client.destroy();
  }
}
