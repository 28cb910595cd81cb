// Uploads a shard file through the SDK as a multipart body streamed from disk.
//
// `files.create({ file })` builds a FormData around a file-backed Blob, and fetch reads that Blob
// in 64 KiB chunks, copying each into a fresh ArrayBuffer: measured on 4 uploads of a 45 MB shard,
// 2.4 s of CPU and 17 full (mark-compact) garbage collections, each marking the worker's whole
// heap. The same bytes sent as a stream of 1 MiB file reads: 1.0 s and 5. The request still goes
// through the SDK (base URL, key, timeout, error classes), only the body is built here.
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type OpenAI from 'openai';

const READ_BYTES = 1 << 20;

/** A field value or file name made safe for a Content-Disposition header. */
const quoted = (s: string): string => s.replace(/[\r\n"]/g, (c) => encodeURIComponent(c));

/** Uploads `file` (its `size` bytes) as `name` with purpose "batch". */
export async function uploadBatchFile(
  openai: OpenAI,
  file: string,
  size: number,
  name: string,
  signal?: AbortSignal,
): Promise<OpenAI.Files.FileObject> {
  const boundary = `batchpilot-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted(name)}"\r\n` +
      'Content-Type: application/jsonl\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  // A read failure reaches the SDK as a bare "Connection error."; kept to be thrown instead.
  let readFailure: Error | undefined;
  async function* parts(): AsyncGenerator<Buffer> {
    yield head;
    let sent = 0;
    try {
      for await (const chunk of fs.createReadStream(file, { highWaterMark: READ_BYTES })) {
        sent += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
    } catch (err) {
      readFailure = err as Error;
      throw err;
    }
    // The length was announced up front: a file that changed underneath must not go out short.
    if (sent !== size) {
      readFailure = new Error(`${file} changed while it was uploaded (${sent} of ${size} bytes)`);
      throw readFailure;
    }
    yield tail;
  }
  try {
    return await openai.post<OpenAI.Files.FileObject>('/files', {
      body: Readable.toWeb(Readable.from(parts())),
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(head.length + size + tail.length),
      },
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    throw readFailure ?? err;
  }
}
