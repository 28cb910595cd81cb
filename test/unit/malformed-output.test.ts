// What collection makes of a line in a provider's result file that is not a result line.
import { describe, expect, it } from 'vitest';
import { missingLine } from '../../activities/classify.ts';
import {
  malformedLine,
  missingAmidUnreadable,
  readResultFileLine,
} from '../../activities/malformed-output.ts';

const read = (text: string) => readResultFileLine(Buffer.from(text));

describe('readResultFileLine', () => {
  it('reads a result line, and an error line that names no request, as JSON', () => {
    expect(read('{"custom_id":"a","response":null,"error":{"code":"x"}}')).toMatchObject({ ok: true });
    expect(read('{"custom_id":"turn","error":{"code":"token_limit_exceeded"}}')).toMatchObject({ ok: true });
    expect(read('{"error":{"code":"token_limit_exceeded","message":"m"}}')).toMatchObject({ ok: true });
  });

  it('keeps the custom_id of a line cut off after it, escapes and all', () => {
    expect(read('{"id":"batch_req_1","custom_id":"q\\"1\\u00e9","response":{"status_code":200,"bo')).toEqual({
      ok: false,
      customId: 'q"1é',
      excerpt: JSON.stringify(
        '{"id":"batch_req_1","custom_id":"q\\"1\\u00e9","response":{"status_code":200,"bo',
      ),
    });
  });

  it('has no custom_id for a line cut before it, JSON that is not an object, or an object naming nothing', () => {
    for (const text of [
      '{"id":"batch_req_1",',
      '<html>502 Bad Gateway</html>',
      'null',
      '[1,2]',
      '42',
      '{"id":"x"}',
    ])
      expect(read(text), text).toMatchObject({ ok: false, customId: undefined });
  });

  it('quotes at most 200 characters of a long line', () => {
    const r = read(`{"custom_id":"a","response":${'x'.repeat(5000)}`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.customId).toBe('a');
    expect(JSON.parse(r.excerpt.replace(/…$/, ''))).toHaveLength(200);
    expect(r.excerpt.endsWith('…')).toBe(true);
  });
});

describe('accounting for malformed lines', () => {
  it('fails the request of a legible malformed line for good, quoting it', () => {
    expect(malformedLine('"{\\"id\\""')).toEqual({
      kind: 'permanent',
      error: {
        code: 'malformed_output',
        message: 'the provider returned malformed output for this line: "{\\"id\\""',
        status_code: null,
      },
      usage: null,
    });
  });

  it('fails the missing lines for good when unreadable lines account for all of them', () => {
    const c = missingAmidUnreadable(missingLine('completed', false), 2, { count: 2, first: '"{"' });
    expect(c.kind).toBe('permanent');
    expect(c.error?.code).toBe('malformed_output');
    expect(c.error?.message).toMatch(
      /2 malformed output line\(s\) whose custom_id could not be read .*no result for this line/,
    );
  });

  it('sends missing lines again when there are more of them than unreadable lines, saying why', () => {
    const c = missingAmidUnreadable(missingLine('expired', false), 5, { count: 1, first: '"{"' });
    expect(c.kind).toBe('retry');
    expect(c.error?.code).toBe('batch_expired');
    expect(c.error?.message).toMatch(
      /^the expired batch returned no result for this line; the provider returned 1 malformed/,
    );
  });
});
