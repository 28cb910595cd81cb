// The outcome record's encoder and the byte scanners the merge reads it with, checked against each
// other on random records: custom_ids and bodies with unicode, escapes, tabs and newlines in
// strings, raw tabs between tokens, records with and without usage and error. Whatever the encoder
// writes, the scanners and the decoder give back.
import { describe, expect, it } from 'vitest';
import { rng } from '../../bench/gen-chat.ts';
import {
  decodeOutcome,
  decodeOutcomeHead,
  encodeOutcome,
  encodeOutcomeHead,
  outcomeHeadEnd,
  outcomeIsOk,
  outcomeLineAt,
  outcomeLineEnd,
  outcomeUsage,
  resultBytes,
  type OutcomeRecord,
} from '../../storage/outcome-record.ts';

/** Pieces that stress JSON escaping and the scanners' patterns. */
const PIECES = [
  'a',
  'Z9',
  '-',
  '日本',
  'é',
  '😀',
  '"',
  '\\',
  '\t',
  '\n',
  '\r',
  '\u0000',
  '\u001f',
  '\u2028',
  '{"i":1,',
  ',"k":"ok"',
  ',"u":[1,2,3]',
  '\\"',
  ' ',
];

function randomText(rand: () => number, max: number): string {
  let s = '';
  const n = Math.floor(rand() * max);
  for (let k = 0; k < n; k++) s += PIECES[Math.floor(rand() * PIECES.length)]!;
  return s;
}

const KINDS = ['ok', 'retry', 'permanent'] as const;

function randomRecord(rand: () => number): OutcomeRecord {
  const r: OutcomeRecord = {
    line: rand() < 0.1 ? 4_294_967_295 : Math.floor(rand() * 1_000_000),
    kind: KINDS[Math.floor(rand() * 3)]!,
    attempt: Math.floor(rand() * 12),
    customId: randomText(rand, 8),
  };
  if (rand() < 0.6) {
    const p = Math.floor(rand() * 1e6);
    const c = Math.floor(rand() * 1e6);
    r.usage = [p, c, p + c];
  }
  if (rand() < 0.5) {
    r.error = {
      code: randomText(rand, 3) || 'x',
      message: randomText(rand, 10),
      status_code: rand() < 0.3 ? null : 400 + Math.floor(rand() * 200),
    };
  }
  return r;
}

/** A provider line: compact JSON, or with raw tabs and spaces between tokens (JSON allows them). */
function randomResult(rand: () => number, customId: string): { text: string; value: unknown } {
  const value = {
    id: randomText(rand, 4),
    custom_id: customId,
    response: { status_code: 200, body: { choices: [{ message: { content: randomText(rand, 30) } }] } },
  };
  const text = rand() < 0.3 ? JSON.stringify(value, null, '\t').replace(/\n/g, ' ') : JSON.stringify(value);
  return { text, value };
}

describe('outcome records, encoded then scanned', () => {
  it('give back every field and the result bytes, for 3000 random records', () => {
    const rand = rng(20261130);
    const records: OutcomeRecord[] = [];
    const results: Buffer[] = [];
    const chunks: Buffer[] = [];
    for (let n = 0; n < 3000; n++) {
      const r = randomRecord(rand);
      const res = rand() < 0.15 ? { text: '', value: undefined } : randomResult(rand, r.customId);
      const stored = res.text ? resultBytes(Buffer.from(res.text), res.value) : Buffer.alloc(0);
      // A result keeps its bytes unless it held a raw tab; then it is the same value re-encoded.
      if (res.text && !res.text.includes('\t')) expect(stored.toString()).toBe(res.text);
      if (res.text) expect(JSON.parse(stored.toString())).toEqual(res.value);
      // The bytes are those of the header object serialized in field order (the format on disk
      // before the encoder owned it), so work folders of running jobs read the same.
      const legacy = {
        i: r.line,
        k: r.kind,
        a: r.attempt,
        cid: r.customId,
        ...(r.usage ? { u: r.usage } : {}),
        ...(r.error ? { e: r.error } : {}),
      };
      expect(encodeOutcomeHead(r)).toBe(`${JSON.stringify(legacy)}\t`);
      records.push(r);
      results.push(stored);
      chunks.push(Buffer.from(encodeOutcomeHead(r)), stored, Buffer.from('\n'));
    }
    // Scanned in one buffer, as the merge reads a file: each record between newlines.
    const buf = Buffer.concat(chunks);
    let at = 0;
    const usage = [0, 0, 0];
    for (let n = 0; n < records.length; n++) {
      const r = records[n]!;
      const end = buf.indexOf(10, at);
      expect(end).toBeGreaterThan(at);
      const headEnd = outcomeHeadEnd(buf, at, end);
      expect(outcomeLineAt(buf, at, end)).toBe(r.line);
      const lineEnd = outcomeLineEnd(buf, at, headEnd);
      expect(outcomeIsOk(buf, lineEnd)).toBe(r.kind === 'ok');
      expect(outcomeUsage(buf, lineEnd, headEnd, usage)).toBe(r.usage !== undefined);
      if (r.usage) expect(usage).toEqual(r.usage);
      expect(decodeOutcomeHead(buf, at, headEnd)).toEqual(r);
      expect(buf.subarray(Math.min(headEnd + 1, end), end).equals(results[n]!)).toBe(true);
      const text = buf.toString('utf8', at, end);
      expect(decodeOutcome(text)).toEqual({ record: r, result: results[n]!.toString() });
      at = end + 1;
    }
    expect(at).toBe(buf.length);
  });

  it('write the header keys in the order the scanners read, as older work folders hold them', () => {
    const r: OutcomeRecord = {
      line: 7,
      kind: 'ok',
      attempt: 2,
      customId: 'a"b',
      usage: [1, 2, 3],
      error: { code: 'c', message: 'm', status_code: null },
    };
    expect(encodeOutcome(r, '{}')).toBe(
      '{"i":7,"k":"ok","a":2,"cid":"a\\"b","u":[1,2,3],"e":{"code":"c","message":"m","status_code":null}}\t{}',
    );
  });

  it('refuse a record the scanners could not read back, and name a malformed one', () => {
    expect(() => encodeOutcomeHead({ line: -1, kind: 'ok', attempt: 1, customId: 'x' })).toThrow(
      /line and attempt/,
    );
    expect(() => encodeOutcomeHead({ line: 1.5, kind: 'ok', attempt: 1, customId: 'x' })).toThrow(
      /line and attempt/,
    );
    const bad = Buffer.from('{"k":"ok","i":3}\t{}');
    expect(() => outcomeLineAt(bad, 0, bad.length)).toThrow(/malformed outcome record: \{"k":"ok"/);
    expect(() => decodeOutcome('{"i":1,"k":"maybe","a":1,"cid":"x"}')).toThrow(/malformed outcome record/);
  });
});
