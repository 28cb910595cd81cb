// The planner reading its input straight from an object (storage/object-input.ts) on a real
// S3-compatible server (versitygw): the same plan as from the local file, byte for byte, with
// duplicates still found when two ids' hashes meet (forced by masking the hashes), which re-reads
// earlier lines by ranged GETs; and an object that goes away is a clear, permanent error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientOptionsOf, startTestObjectServer, type Server } from '../support/object-server.ts';
import type { PlanOptions, PlanTuning } from '../../planner/index.ts';
import { ObjectInput, ObjectInputError } from '../../storage/object-input.ts';
import { ObjectStore, type ObjectStoreOptions, type S3Location } from '../../storage/s3.ts';
import { plan, readPlan } from '../planner/helpers.ts';

const BUCKET = 'batchpilot-input';
const at = (key: string): S3Location => ({ bucket: BUCKET, key });
/** Small GETs and slots, so that a small input spans many of both. */
const READ = { chunk: 1 << 16, ahead: 1 };
const COLLIDING: PlanTuning = { workers: 0, chunkBytes: 1 << 16, idHashMask: 0xfff };
const LIMITS = { maxLines: 300, maxBytes: 1_000_000, maxLineBytes: 4000 };

describe('the planner on an object input', () => {
  let dir: string;
  let server: Server;
  let options: ObjectStoreOptions;
  let store: ObjectStore;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-objin-'));
    server = await startTestObjectServer(dir);
    options = clientOptionsOf(server);
    store = new ObjectStore(options);
    await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });
  afterAll(async () => {
    store?.close();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Plans `name` from the local file and from its object; returns both plans and the object's GETs. */
  async function bothWays(name: string, text: string, extra: Partial<PlanOptions> = {}) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    await store.write(at(name), Buffer.from(text));
    extra = { limits: LIMITS, ...extra };
    const local = await plan(file, path.join(dir, `${name}-local`), extra, COLLIDING);
    const input = new ObjectInput(at(name), Buffer.byteLength(text), options, READ);
    const uri = `s3://${BUCKET}/${name}`;
    const fromObject = await plan(
      uri,
      path.join(dir, `${name}-object`),
      { ...extra, inputBytes: input },
      COLLIDING,
    );
    return {
      local,
      fromObject,
      gets: input.gets,
      plans: [`${name}-local`, `${name}-object`].map((d) => readPlan(path.join(dir, d))),
    };
  }

  it('plans a JSONL object as its local copy, re-reading earlier ids by ranged GETs', async () => {
    // Every 7th line repeats the id of a line far behind (outside the read-ahead window), the rest
    // are unique; with 12 bits of each hash, unrelated ids meet too, each meeting settled by a re-read.
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const id = i % 7 === 6 ? `req-${i > 1500 ? i - 1500 : i - 3}` : `req-${i}`;
      lines.push(
        JSON.stringify({
          custom_id: id,
          method: 'POST',
          url: '/v1/chat/completions',
          body: {
            model: i % 2 ? 'qwen-plus' : 'qwen-flash',
            messages: [{ role: 'user', content: `q ${i}` }],
          },
        }),
      );
    }
    const { local, fromObject, gets, plans } = await bothWays('in.jsonl', lines.join('\n') + '\n');
    expect(fromObject.rejected).toBe(local.rejected);
    expect(local.rejected).toBe(285);
    expect(fromObject.problems.every((p) => p.code === 'duplicate_custom_id')).toBe(true);
    expect(fromObject.shardList).toEqual(local.shardList);
    const [onDisk, onObject] = plans;
    expect(onObject!.shards).toEqual(onDisk!.shards);
    expect(onObject!.rejected).toEqual(onDisk!.rejected);
    expect(onObject!.manifest.input).toBe(`s3://${BUCKET}/in.jsonl`);
    // The input spans many GETs, read once front to back; earlier ids came by GETs of their own.
    const size = Buffer.byteLength(lines.join('\n') + '\n');
    expect(gets.inOrder).toBe(Math.ceil(size / READ.chunk));
    expect(gets.outOfOrder).toBeGreaterThan(0);
  });

  it('plans a CSV object as its local copy, duplicates found through hash meetings', async () => {
    const rows = ['id,question'];
    for (let i = 0; i < 2000; i++)
      rows.push(`${i % 10 === 9 ? `c${i > 1503 ? i - 1503 : i - 5}` : `c${i}`},"q, ${i} ${'?'.repeat(100)}"`);
    const csv = { idColumn: 'id', promptColumn: 'question', model: 'qwen-plus' };
    const { local, fromObject, gets, plans } = await bothWays('in.csv', rows.join('\n') + '\n', { csv });
    expect(local.rejected).toBe(200);
    expect(fromObject.rejected).toBe(local.rejected);
    expect(fromObject.problems).toEqual(local.problems);
    expect(plans[1]!.shards).toEqual(plans[0]!.shards);
    expect(gets.outOfOrder).toBeGreaterThan(0);
  });

  it('plans from the start again after an attempt that failed mid-way, as a retried activity does', async () => {
    const lines = Array.from({ length: 1200 }, (_, i) =>
      JSON.stringify({
        custom_id: `r-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'qwen-plus',
          messages: [{ role: 'user', content: `question ${i} ${'?'.repeat(i % 300)}` }],
        },
      }),
    );
    const text = lines.join('\n') + '\n';
    const file = path.join(dir, 'retry.jsonl');
    fs.writeFileSync(file, text);
    await store.write(at('retry.jsonl'), text);
    const uri = `s3://${BUCKET}/retry.jsonl`;
    const extra = { limits: { ...LIMITS, maxLines: 100 } };
    const tuning: PlanTuning = { workers: 0, chunkBytes: 1 << 16 };

    // The first attempt loses its worker while committing its third shard: its scratch is gone.
    let committed = 0;
    const first = new ObjectInput(at('retry.jsonl'), text.length, options, READ);
    const attempt = path.join(dir, 'retry-first');
    const onShardDone = () =>
      ++committed === 3 ? Promise.reject(new Error('worker lost')) : Promise.resolve();
    await expect(plan(uri, attempt, { ...extra, inputBytes: first, onShardDone }, tuning)).rejects.toThrow(
      'worker lost',
    );
    fs.rmSync(attempt, { recursive: true, force: true });

    // The retry reads the object from its start and plans what the local file plans.
    const again = new ObjectInput(at('retry.jsonl'), text.length, options, READ);
    await plan(uri, path.join(dir, 'retry-again'), { ...extra, inputBytes: again }, tuning);
    await plan(file, path.join(dir, 'retry-local'), extra, tuning);
    const [onObject, onDisk] = ['retry-again', 'retry-local'].map((d) => readPlan(path.join(dir, d)));
    expect(onObject!.shards.length).toBe(12);
    expect(onObject!.shards).toEqual(onDisk!.shards);
    expect(again.gets.inOrder).toBe(Math.ceil(text.length / READ.chunk));
  });

  it('fails with a permanent error naming the object when it is gone', async () => {
    const text = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}\n';
    await store.write(at('gone.jsonl'), text);
    const input = new ObjectInput(at('gone.jsonl'), text.length, options, READ);
    await store.delete(at('gone.jsonl'));
    const err = await plan(`s3://${BUCKET}/gone.jsonl`, undefined, { inputBytes: input }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ObjectInputError);
    expect((err as ObjectInputError).permanent).toBe(true);
    expect((err as Error).message).toMatch(/cannot read input s3:\/\/batchpilot-input\/gone\.jsonl: .*gone/);
  });
});
