// The synchronous Batch Chat API (docs/providers.md): one request per call, held for a queueing delay
// and then answered like a real-time call. Also serves `/v1/embeddings` and the ds-test model.
import { setTimeout as sleep } from 'node:timers/promises';
import { answer } from './answers.ts';
import type { Handler } from './context.ts';
import { HttpError, isRecord, readJson } from './http.ts';
import { TEST_ENDPOINT, TEST_MODEL, modelExists } from './limits.ts';
import { hexId } from './random.ts';

export const syncRequest: Handler = async ({ req, url, state }) => {
  const endpoint = url.pathname;
  const body = await readJson(req);
  if (!isRecord(body))
    throw new HttpError(400, 'the request body must be a JSON object', { code: 'invalid_request' });
  const model = body.model;
  if (typeof model !== 'string' || model === '') {
    throw new HttpError(400, 'model is required', { code: 'missing_required_parameter', param: 'model' });
  }
  if (!modelExists(model) || (endpoint === TEST_ENDPOINT && model !== TEST_MODEL)) {
    throw new HttpError(404, `The model ${model} does not exist.`, {
      code: 'model_not_found',
      param: 'model',
    });
  }
  const needs = endpoint === '/v1/embeddings' ? 'input' : 'messages';
  if (body[needs] === undefined || body[needs] === null) {
    throw new HttpError(400, `${needs} is required`, { code: 'missing_required_parameter', param: needs });
  }
  if (body.stream === true) {
    throw new HttpError(400, 'stream: true is not supported here', {
      code: 'streaming_unsupported',
      param: 'stream',
    });
  }
  // The provider queues the request and holds the connection; a client that leaves ends the wait.
  const gone = new AbortController();
  const onClose = (): void => gone.abort();
  req.socket.once('close', onClose);
  try {
    await sleep(state.faults().chatDelayMs, undefined, {
      signal: AbortSignal.any([gone.signal, state.signal]),
    });
  } catch {
    throw new HttpError(503, 'the request was dropped while queued', { code: 'ServiceUnavailable' });
  } finally {
    req.socket.off('close', onClose);
  }
  const result = answer(endpoint, body, hexId(JSON.stringify(body)));
  if (!result.ok) {
    throw new HttpError(result.status, result.message, { code: result.code });
  }
  return { status: 200, body: result.body };
};
