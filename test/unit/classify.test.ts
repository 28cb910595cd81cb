import { describe, expect, it } from 'vitest';
import { classifyResult, missingLine } from '../../activities/classify.ts';

const ok = {
  custom_id: 'a',
  response: {
    status_code: 200,
    body: { usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } },
  },
  error: null,
};

describe('classifyResult', () => {
  it('takes a 200 with no error as success and reads its usage', () => {
    expect(classifyResult(ok)).toEqual({ kind: 'ok', error: null, usage: [3, 4, 7] });
  });
  it('classifies a failed line found in the output file by its own status (DashScope quirk)', () => {
    const c = classifyResult({
      custom_id: 'a',
      response: { status_code: 400, body: { error: { code: 'InvalidParameter', message: 'too long' } } },
      error: null,
    });
    expect(c.kind).toBe('permanent');
    expect(c.error).toEqual({ code: 'InvalidParameter', message: 'too long', status_code: 400 });
  });
  it('retries 429, 408 and 5xx', () => {
    for (const status of [429, 408, 500, 503]) {
      expect(classifyResult({ response: { status_code: status, body: {} }, error: null }).kind).toBe('retry');
    }
  });
  it('retries expired and timed-out lines, reading error_code fields too', () => {
    expect(classifyResult({ response: null, error: { code: 'batch_expired', message: 'x' } }).kind).toBe(
      'retry',
    );
    const c = classifyResult({
      response: null,
      error: { error_code: 'request_timeout', error_message: 'slow' },
    });
    expect(c).toMatchObject({
      kind: 'retry',
      error: { code: 'request_timeout', message: 'slow', status_code: null },
    });
  });
  it('retries batch_cancelled unless the cancel was ours', () => {
    const line = { response: null, error: { code: 'batch_cancelled', message: 'x' } };
    expect(classifyResult(line, false).kind).toBe('retry');
    expect(classifyResult(line, true).kind).toBe('permanent');
  });
  it('treats content filter, auth and unknown models as permanent', () => {
    for (const [status, code] of [
      [400, 'DataInspectionFailed'],
      [401, 'InvalidApiKey'],
      [404, 'model_not_found'],
    ] as const) {
      expect(
        classifyResult({
          response: { status_code: status, body: { error: { code, message: 'm' } } },
          error: null,
        }).kind,
      ).toBe('permanent');
    }
  });
  it('marks lines missing from both files for resubmission, or cancelled when the user cancelled', () => {
    expect(missingLine('expired', false)).toMatchObject({ kind: 'retry', error: { code: 'batch_expired' } });
    expect(missingLine('completed', false)).toMatchObject({
      kind: 'retry',
      error: { code: 'not_processed' },
    });
    expect(missingLine('cancelled', true)).toMatchObject({
      kind: 'permanent',
      error: { code: 'batch_cancelled' },
    });
  });
});
