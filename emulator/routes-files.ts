// Files API (docs/providers.md, Files): upload streamed to disk, retrieve, list newest first, delete,
// and content streamed back.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Handler, RequestContext } from './context.ts';
import { HttpError, drain, type Reply } from './http.ts';
import { receiveUpload } from './multipart.ts';
import { nowSeconds } from './objects.ts';
import { pageOf } from './paging.ts';
import type { StoredFile } from './store.ts';

function fileOr404(ctx: RequestContext): StoredFile {
  const id = ctx.params[0]!;
  const f = ctx.state.store.liveFile(id);
  if (!f) throw new HttpError(404, `No such File object: ${id}`, { code: 'not_found', param: 'id' });
  return f;
}

export const uploadFile: Handler = async ({ req, state }) => {
  if (!/^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) {
    throw new HttpError(400, 'upload a file as multipart/form-data with fields file and purpose', {
      code: 'invalid_request',
    });
  }
  const { store, rules } = state;
  const held = store.stats();
  if (held.files >= rules.limits.maxFiles) {
    await drain(req);
    throw new HttpError(400, `the account already holds ${held.files} files, the most allowed: delete some`, {
      code: 'BadRequest.TooManyFiles',
    });
  }
  const tmp = store.uploadTempPath();
  try {
    const upload = await receiveUpload(req, tmp, rules.limits.maxFileBytes);
    if (!upload.file) {
      throw new HttpError(400, 'the multipart body has no "file" field', {
        code: 'missing_required_parameter',
        param: 'file',
      });
    }
    if (upload.file.tooLarge) {
      throw new HttpError(400, `file is larger than ${rules.limits.maxFileBytes} bytes`, {
        code: 'BadRequest.TooLarge',
        param: 'file',
      });
    }
    if (held.bytesStored + upload.file.bytes > rules.limits.maxStoredBytes) {
      throw new HttpError(
        400,
        `the account's files would exceed ${rules.limits.maxStoredBytes} bytes: delete some`,
        {
          code: 'BadRequest.StorageFull',
        },
      );
    }
    const purpose = upload.fields.purpose;
    if (purpose === undefined) {
      throw new HttpError(400, 'purpose is required', {
        code: 'missing_required_parameter',
        param: 'purpose',
      });
    }
    if (purpose !== 'batch') {
      throw new HttpError(400, `purpose must be "batch", not "${purpose}"`, {
        code: 'invalid_value',
        param: 'purpose',
      });
    }
    const stored = store.addFile(
      {
        file: {
          id: `file-batch-${randomBytes(12).toString('hex')}`,
          object: 'file',
          bytes: upload.file.bytes,
          created_at: nowSeconds(),
          filename: upload.file.filename,
          purpose,
          status: 'processed',
          status_details: null,
        },
        sha256: upload.file.sha256,
      },
      tmp,
    );
    return { status: 200, body: stored.file };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
};

export const retrieveFile: Handler = (ctx) => ({ status: 200, body: fileOr404(ctx).file });

export const listFiles: Handler = ({ url, state }) => {
  const purpose = url.searchParams.get('purpose');
  const order = url.searchParams.get('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') {
    throw new HttpError(400, 'order must be asc or desc', { code: 'invalid_value', param: 'order' });
  }
  const all = [...state.store.files.values()]
    .filter((f) => !f.deleted && (!purpose || f.file.purpose === purpose))
    .sort((a, b) => (order === 'desc' ? b.seq - a.seq : a.seq - b.seq));
  const page = pageOf(all, url, (f) => f.file, {
    defaultLimit: 10_000,
    maxLimit: 10_000,
    seqOf: (id) => state.store.files.get(id)?.seq,
    descending: order === 'desc',
  });
  return { status: 200, body: page };
};

export const deleteFile: Handler = (ctx) => {
  const f = fileOr404(ctx);
  ctx.state.store.deleteFile(f.file.id);
  return { status: 200, body: { id: f.file.id, object: 'file', deleted: true } };
};

export const fileContent: Handler = (ctx): Reply => {
  const f = fileOr404(ctx);
  if (f.file.purpose === 'batch' && !ctx.state.rules.inputContentReadable) {
    throw new HttpError(400, 'Not allowed to download files of purpose: batch', { code: 'invalid_request' });
  }
  const file = ctx.state.store.contentPath(f.file.id);
  return {
    stream: async (res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': fs.statSync(file).size,
        'content-disposition': `attachment; filename="${f.file.filename.replace(/"/g, '')}"`,
      });
      await pipeline(fs.createReadStream(file), res);
    },
  };
};
