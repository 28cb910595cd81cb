// File-level validation: a batch whose file has problems is created, then fails with every bad
// line listed, one entry each, numbered from 1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatFile, chatLine, createBatch, harness, waitFor, type Harness } from './helpers.ts';

describe('file validation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ limitsOverride: { maxLines: 20, maxLineBytes: 600 } });
  });
  afterAll(() => h.close());

  const failWith = async (content: string, endpoint?: string) => {
    const b = await waitFor(
      h.client,
      (await createBatch(h.client, content, endpoint ? { endpoint } : {})).id,
    );
    expect(b.status).toBe('failed');
    expect(b.failed_at).toBeGreaterThan(0);
    expect(b.output_file_id).toBeNull();
    return b.errors!.data!.map((e) => ({ line: e.line, code: e.code, param: e.param }));
  };

  it('lists every bad line of a file with its code, param and line number', async () => {
    const base = (id: string, body: Record<string, unknown> = {}, row: Record<string, unknown> = {}) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }], ...body },
        ...row,
      });
    const lines = [
      base('ok-1'), // 1
      '{"custom_id": "broken", ', // 2
      JSON.stringify({
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', messages: [] },
      }), // 3
      base('no-model', { model: undefined }), // 4
      base('wrong-url', {}, { url: '/v1/embeddings' }), // 5
      base('ok-1'), // 6
      base('other-model', { model: 'qwen-max' }), // 7
      base('unknown-model', { model: 'no-such-model' }), // 8
      base('streams', { stream: true }), // 9
      base('get', {}, { method: 'GET' }), // 10
      base('ok-2'), // 11
      base('no-messages', { messages: undefined }), // 12
      base('thinks', { enable_thinking: true }), // 13
      '', // 14
      '[1, 2]', // 15
      base('x'.repeat(257)), // 16
      base('big', { messages: [{ role: 'user', content: 'y'.repeat(700) }] }), // 17
      base('no-url', {}, { url: undefined }), // 18
      base('ok-3'), // 19
    ];
    expect(await failWith(lines.join('\n') + '\n')).toEqual([
      { line: 2, code: 'invalid_json_line', param: null },
      { line: 3, code: 'missing_required_parameter', param: 'custom_id' },
      { line: 4, code: 'missing_required_parameter', param: 'body.model' },
      { line: 5, code: 'invalid_url', param: 'url' },
      { line: 6, code: 'duplicate_custom_id', param: 'custom_id' },
      { line: 7, code: 'mismatched_model', param: 'body.model' },
      { line: 8, code: 'model_not_found', param: 'body.model' },
      { line: 9, code: 'streaming_unsupported', param: 'body.stream' },
      { line: 10, code: 'invalid_method', param: 'method' },
      { line: 12, code: 'missing_required_parameter', param: 'body.messages' },
      { line: 13, code: 'mismatched_model', param: 'body.enable_thinking' },
      { line: 14, code: 'invalid_json_line', param: null },
      { line: 15, code: 'invalid_json_line', param: null },
      { line: 16, code: 'invalid_custom_id', param: 'custom_id' },
      { line: 17, code: 'line_too_large', param: null },
      { line: 18, code: 'missing_required_parameter', param: 'url' },
    ]);
  });

  it('fails an empty file with empty_file', async () => {
    expect(await failWith('')).toEqual([{ line: null, code: 'empty_file', param: null }]);
    expect(await failWith('\n\n')).toEqual([{ line: null, code: 'empty_file', param: null }]);
  });

  it('fails a file over the line limit with too_many_tasks', async () => {
    expect(await failWith(chatFile(21))).toEqual([{ line: null, code: 'too_many_tasks', param: null }]);
    const ok = await waitFor(h.client, (await createBatch(h.client, chatFile(20))).id);
    expect(ok.status).toBe('completed');
  });

  it('accepts CRLF line ends and a last line without a newline', async () => {
    const content = [chatLine('a', 'one'), chatLine('b', 'two'), chatLine('c', 'three')].join('\r\n');
    const b = await waitFor(h.client, (await createBatch(h.client, content)).id);
    expect(b.status).toBe('completed');
    expect(b.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
  });

  it('checks the dry-run endpoint: only batch-test-model, at most 100 lines there', async () => {
    const testLine = (id: string, model = 'batch-test-model') =>
      chatLine(id, 'hi', { model, url: '/v1/chat/ds-test' });
    expect(
      await failWith([testLine('a'), testLine('b', 'qwen-plus')].join('\n'), '/v1/chat/ds-test'),
    ).toEqual([{ line: 2, code: 'model_not_found', param: 'body.model' }]);
  });
});

describe('the dry-run line limit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(() => h.close());

  it('refuses 101 lines on /v1/chat/ds-test with too_many_tasks', async () => {
    const lines = Array.from({ length: 101 }, (_, i) =>
      chatLine(`t${i}`, 'hi', { model: 'batch-test-model', url: '/v1/chat/ds-test' }),
    ).join('\n');
    const b = await waitFor(
      h.client,
      (await createBatch(h.client, lines, { endpoint: '/v1/chat/ds-test' })).id,
    );
    expect(b.status).toBe('failed');
    expect(b.errors!.data!.map((e) => e.code)).toEqual(['too_many_tasks']);
  });
});
