// The object store against a real S3-compatible server (versitygw, built by
// `BATCHPILOT_FLEET=1 bash scripts/setup.sh`): commit-once writes, multipart streams, ranged reads,
// listing past one page, many streams open at once, and errors that say what to fix.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientOptionsOf, startTestObjectServer, type Server } from '../support/object-server.ts';
import { ObjectExistsError, ObjectStore, PART_SIZE, type S3Location } from '../../storage/s3.ts';

const BUCKET = 'batchpilot-test';
const at = (key: string): S3Location => ({ bucket: BUCKET, key });

/** `bytes` of a deterministic pattern, produced in 1 MiB chunks (never held whole). */
function patternStream(bytes: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff;
  let left = bytes;
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(chunk.subarray(0, n));
    },
  });
}

describe('object store on versitygw', () => {
  let dir: string;
  let server: Server;
  let store: ObjectStore;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-s3-'));
    server = await startTestObjectServer(dir);
    store = new ObjectStore(clientOptionsOf(server));
    await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });
  afterAll(async () => {
    store?.close();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('commits a small object once: a second commit-once write is refused and changes nothing', async () => {
    await store.write(at('jobs/a/summary.json'), '{"n":1}', { ifAbsent: true });
    await expect(
      store.write(at('jobs/a/summary.json'), '{"n":2}', { ifAbsent: true }),
    ).rejects.toBeInstanceOf(ObjectExistsError);
    expect((await buffer(await store.read(at('jobs/a/summary.json')))).toString()).toBe('{"n":1}');
    // A plain write replaces (scratch objects that a retried step rewrites whole).
    await store.write(at('jobs/a/summary.json'), '{"n":3}');
    expect((await buffer(await store.read(at('jobs/a/summary.json')))).toString()).toBe('{"n":3}');
  });

  it('streams an object of several parts, reads ranges of it, and refuses to commit it twice', async () => {
    const bytes = 2 * PART_SIZE + 12_345;
    await store.write(at('jobs/b/shard-1.jsonl'), patternStream(bytes), { ifAbsent: true });
    expect(await store.size(at('jobs/b/shard-1.jsonl'))).toBe(bytes);
    const whole = await buffer(await store.read(at('jobs/b/shard-1.jsonl')));
    expect(whole.equals(await buffer(patternStream(bytes)))).toBe(true);
    // A range across the first part boundary, and the tail.
    const range = await buffer(
      await store.read(at('jobs/b/shard-1.jsonl'), { start: PART_SIZE - 10, end: PART_SIZE + 9 }),
    );
    expect(range.equals(whole.subarray(PART_SIZE - 10, PART_SIZE + 10))).toBe(true);
    const tail = await buffer(await store.read(at('jobs/b/shard-1.jsonl'), { start: bytes - 5 }));
    expect(tail.equals(whole.subarray(bytes - 5))).toBe(true);
    await expect(
      store.write(at('jobs/b/shard-1.jsonl'), patternStream(PART_SIZE + 1), { ifAbsent: true }),
    ).rejects.toBeInstanceOf(ObjectExistsError);
    expect(await store.size(at('jobs/b/shard-1.jsonl'))).toBe(bytes);
  });

  it('lists past one page, in key order, and says when an object is missing', async () => {
    const n = 1_003;
    const keys = Array.from({ length: n }, (_, i) => `jobs/c/outcome-${String(i).padStart(5, '0')}.jsonl`);
    for (let i = 0; i < n; i += 50)
      await Promise.all(keys.slice(i, i + 50).map((k) => store.write(at(k), k)));
    const listed: string[] = [];
    for await (const o of store.list(at('jobs/c/'))) listed.push(o.key);
    expect(listed).toEqual(keys);
    expect(await store.size(at('jobs/c/none.jsonl'))).toBeUndefined();
    await store.delete(at(keys[0]!));
    expect(await store.size(at(keys[0]!))).toBeUndefined();
  });

  it('holds more streams open at once than the SDK default of 50 sockets', async () => {
    const keys = Array.from({ length: 120 }, (_, i) => `jobs/d/part-${i}`);
    await Promise.all(keys.map((k) => store.write(at(k), k.repeat(100))));
    // Every stream is opened before any is read: the merge's pattern.
    const streams = await Promise.all(keys.map((k) => store.read(at(k))));
    const bodies = await Promise.all(streams.map((s) => buffer(s)));
    expect(bodies.map((b) => b.toString())).toEqual(keys.map((k) => k.repeat(100)));
  });

  it('names what to fix for a wrong secret and for a missing bucket', async () => {
    const wrong = new ObjectStore({
      env: { AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: server.region },
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: 'not-the-secret' },
    });
    try {
      await expect(wrong.write(at('x'), 'x')).rejects.toThrow(/HTTP 403.*AWS_SECRET_ACCESS_KEY/);
    } finally {
      wrong.close();
    }
    await expect(store.read({ bucket: 'no-such-bucket', key: 'x' })).rejects.toThrow(/create the bucket/);
  });
});
