// Receives a multipart upload straight to disk (busboy): the file is hashed and counted as it
// streams and cut off at the size limit, so no upload is ever held in memory.
import busboy from 'busboy';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface Upload {
  fields: Record<string, string>;
  file: { filename: string; bytes: number; sha256: string; tooLarge: boolean } | null;
}

export async function receiveUpload(req: IncomingMessage, dest: string, maxBytes: number): Promise<Upload> {
  // busboy flags a file that reaches its limit, so allow one byte more and compare ourselves.
  const bb = busboy({ headers: req.headers, limits: { fileSize: maxBytes + 1, files: 1, fields: 20 } });
  const fields: Record<string, string> = {};
  let file: Upload['file'] = null;
  let writing: Promise<void> = Promise.resolve();
  const done = new Promise<void>((resolve, reject) => {
    bb.on('field', (name, value) => {
      fields[name] = value;
    });
    bb.on('file', (name, stream, info) => {
      if (name !== 'file' || file) {
        stream.resume();
        return;
      }
      const hash = createHash('sha256');
      const current = { filename: info.filename || 'upload.jsonl', bytes: 0, sha256: '', tooLarge: false };
      file = current;
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          current.bytes += chunk.length;
          current.tooLarge = current.bytes > maxBytes;
          cb(null, chunk);
        },
      });
      writing = pipeline(stream, tap, fs.createWriteStream(dest)).then(() => {
        current.sha256 = hash.digest('hex');
      });
      // Keep a rejection from going unhandled before `done` settles; it is awaited below.
      writing.catch(() => undefined);
    });
    bb.on('close', resolve);
    bb.on('error', reject);
    req.on('error', reject);
  });
  req.pipe(bb);
  await done;
  await writing;
  return { fields, file };
}
