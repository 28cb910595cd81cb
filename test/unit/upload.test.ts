// The shard upload streams its multipart body through the SDK: the provider must receive exactly
// the file's bytes under its name, and its refusals must come back as the SDK's errors (which
// provider-errors.ts turns into retryable or final failures).
import fs from 'node:fs';
import path from 'node:path';
import { APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { uploadBatchFile } from '../../activities/upload.ts';
import { chatLine, harness, type Harness } from '../emulator/helpers.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function shardFile(dir: string, lines: number): { file: string; size: number } {
  const file = path.join(dir, 'shard.jsonl');
  const text = Array.from({ length: lines }, (_, i) =>
    chatLine(`u-${i}`, i % 3 === 0 ? `日本語 ${'x'.repeat(i % 900)}` : `line ${i}\r`),
  ).join('\n');
  fs.writeFileSync(file, `${text}\n`);
  return { file, size: fs.statSync(file).size };
}

describe('uploadBatchFile', () => {
  it('sends the file byte for byte, larger than its read size, under its name', async () => {
    h = await harness();
    const { file, size } = shardFile(h.dataDir, 6000); // ~3 MB: several 1 MiB reads
    const f = await uploadBatchFile(h.client, file, size, 'job-1.r1.u0003.jsonl');
    expect(f).toMatchObject({
      object: 'file',
      bytes: size,
      purpose: 'batch',
      filename: 'job-1.r1.u0003.jsonl',
    });
    const back = Buffer.from(await (await h.client.files.content(f.id)).arrayBuffer());
    expect(back.equals(fs.readFileSync(file))).toBe(true);
  });

  it('keeps a quote or a line break in the name from breaking the multipart header', async () => {
    h = await harness();
    const { file, size } = shardFile(h.dataDir, 3);
    const f = await uploadBatchFile(h.client, file, size, 'a"b\r\nc.jsonl');
    expect(f.bytes).toBe(size);
    expect(f.filename).not.toMatch(/["\r\n]/);
  });

  it("returns the provider's refusal as an SDK error with its status", async () => {
    h = await harness({ limitsOverride: { maxFileBytes: 1000 } });
    const { file, size } = shardFile(h.dataDir, 50);
    const err = await uploadBatchFile(h.client, file, size, 'big.jsonl').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(400);
    expect((err as APIError).message).toMatch(/larger than 1000 bytes/);
  });

  it('refuses to send a file whose size is not the one announced', async () => {
    h = await harness();
    const { file, size } = shardFile(h.dataDir, 20);
    await expect(uploadBatchFile(h.client, file, size + 10, 'short.jsonl')).rejects.toThrow(
      /changed while it was uploaded \(\d+ of \d+ bytes\)/,
    );
    expect((await h.client.files.list()).data).toHaveLength(0);
  });
});
