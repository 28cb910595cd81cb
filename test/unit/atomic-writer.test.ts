// AtomicWriter and ByteWriter: whole files under their final name only on commit, and on a disk that
// refuses the write the failure reaches the caller instead of an unhandled error that would kill the
// worker process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../activities/byte-writer.ts';
import { AtomicWriter } from '../../storage/atomic-file.ts';

describe('AtomicWriter when the temporary file cannot be opened', () => {
  it('rejects the commit and leaves nothing under the final name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-atomic-'));
    const folder = path.join(dir, 'out');
    const target = path.join(folder, 'results.jsonl');
    const w = new AtomicWriter(target);
    // The open is asynchronous: take the folder away before it happens (ENOENT), as a disk that
    // went read-only or full would refuse it (EROFS, ENOSPC, EPERM).
    fs.rmSync(folder, { recursive: true });
    await w.writeLine('{"custom_id":"a"}').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    await expect(w.writeLine('{"custom_id":"b"}')).rejects.toThrow(/ENOENT/);
    await expect(w.commit()).rejects.toThrow(/ENOENT/);
    await w.abort();
    expect(fs.existsSync(target)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('ByteWriter', () => {
  it('writes lines across its buffers, longer than a buffer too, and only on commit', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-bytes-'));
    const target = path.join(dir, 'out.jsonl');
    const w = new ByteWriter(target, 'durable');
    const expected: string[] = [];
    const src = Buffer.from('0123456789'.repeat(300_000)); // 3 MB: longer than one 1 MiB buffer
    for (let n = 0; n < 5000; n++) {
      const len = (n * 7919) % 2000;
      const wait = w.line(src, n, n + len);
      if (wait) await wait;
      expected.push(src.toString('latin1', n, n + len));
    }
    const long = w.line(src, 0, src.length);
    if (long) await long;
    expected.push(src.toString('latin1'));
    await w.text('{"tail":"é"}');
    expected.push('{"tail":"é"}');
    expect(fs.existsSync(target)).toBe(false);
    await w.commit();
    expect(fs.readFileSync(target, 'utf8')).toBe(expected.map((l) => `${l}\n`).join(''));
    expect(w.bytes).toBe(fs.statSync(target).size);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes headed lines (a string, then bytes) across its buffers, multi-byte heads too', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-bytes-'));
    const target = path.join(dir, 'out.jsonl');
    const w = new ByteWriter(target, 'durable');
    const expected: Buffer[] = [];
    const body = Buffer.from('{"x":"日本"}'.repeat(40_000)); // ~560 KB: two of them fill a buffer
    for (let n = 0; n < 3000; n++) {
      const head = n % 3 === 0 ? `{"i":${n},"cid":"é日${n}"}\t` : `{"i":${n}}\t`;
      const len = n % 500 === 0 ? body.length : (n * 131) % 700;
      const wait = w.headed(head, body.subarray(0, len));
      if (wait) await wait;
      expected.push(Buffer.from(head), body.subarray(0, len), Buffer.from('\n'));
    }
    await w.commit();
    expect(fs.readFileSync(target).equals(Buffer.concat(expected))).toBe(true);
    expect(w.bytes).toBe(fs.statSync(target).size);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rejects on a folder that went away and leaves nothing behind after abort', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-bytes-'));
    const folder = path.join(dir, 'out');
    const w = new ByteWriter(path.join(folder, 'results.jsonl'), 'durable');
    fs.rmSync(folder, { recursive: true });
    await expect(w.raw(Buffer.from('x\n'))).rejects.toThrow(/ENOENT/);
    await w.abort();
    expect(fs.existsSync(folder)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
