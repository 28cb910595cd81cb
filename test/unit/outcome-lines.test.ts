import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { customIdOf, readLines } from '../../activities/lines.ts';
import { AtomicWriter } from '../../storage/atomic-file.ts';
import { decodeOutcome, encodeOutcome, outcomeLineAt } from '../../storage/outcome-record.ts';
import { retryAfterMs } from '../../activities/provider-errors.ts';
import { nextPollDelay } from '../../workflows/poll.ts';
import { unitKey, unitWorkflowId } from '../../common/keys.ts';

describe('customIdOf', () => {
  it('reads the id of a line that starts with it, and parses every other line', () => {
    const lines: [string, string][] = [
      ['{"custom_id":"req-1","method":"POST","body":{"custom_id":"nested"}}', 'req-1'],
      ['{"method":"POST","custom_id":"req-2","body":{}}', 'req-2'],
      ['{ "custom_id" : "req-3" }', 'req-3'],
      ['{"custom_id":"a\\"b\\u00e9","body":{}}', 'a"bé'],
      ['{"custom_id":"日本-1","body":{}}', '日本-1'],
    ];
    for (const [text, id] of lines) expect(customIdOf(Buffer.from(text))).toBe(id);
  });
});

describe('outcome records', () => {
  it('round-trip a header and a result holding tabs and newlines in strings', () => {
    const result = JSON.stringify({ custom_id: 'x', response: { body: { content: 'a\tb\nc' } } });
    const record = { line: 42, kind: 'ok', attempt: 2, customId: 'x', usage: [1, 2, 3] } as const;
    const line = encodeOutcome({ ...record, usage: [1, 2, 3] }, result);
    expect(line.split('\n')).toHaveLength(1);
    expect(outcomeLineAt(Buffer.from(line), 0, Buffer.byteLength(line))).toBe(42);
    expect(decodeOutcome(line)).toEqual({ record, result });
  });
});

describe('line files', () => {
  it('reads lines with byte offsets across chunk boundaries, CRLF and a missing final newline', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-lines-'));
    const file = path.join(dir, 'a.jsonl');
    fs.writeFileSync(file, 'héllo\r\n\nworld\nlast');
    const lines = [];
    for await (const l of readLines(file, 3)) lines.push(l);
    expect(lines.map((l) => l.text)).toEqual(['héllo', 'world', 'last']);
    const buf = fs.readFileSync(file);
    for (const l of lines)
      expect(buf.toString('utf8', l.offset, l.offset + Buffer.byteLength(l.text))).toBe(l.text);
  });
  it('leaves no file in place until commit, and none after abort', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-atomic-'));
    const target = path.join(dir, 'out.jsonl');
    const w = new AtomicWriter(target);
    await w.writeLine('one');
    expect(fs.existsSync(target)).toBe(false);
    await w.commit();
    expect(fs.readFileSync(target, 'utf8')).toBe('one\n');
    const w2 = new AtomicWriter(path.join(dir, 'other.jsonl'));
    await w2.writeLine('two');
    await w2.abort();
    expect(fs.readdirSync(dir)).toEqual(['out.jsonl']);
  });
});

describe('scheduling and naming', () => {
  it('draws polls in [60 s, 120 s] unless fixed', () => {
    expect(nextPollDelay(1000, () => 0.5)).toBe(1000);
    expect(nextPollDelay(undefined, () => 0)).toBe(60_000);
    expect(nextPollDelay(undefined, () => 0.999999)).toBe(120_000);
  });
  it('derives deterministic keys and child ids', () => {
    expect(unitKey('job-1', 2, 7)).toBe('job-1/shard-7/round-2');
    expect(unitWorkflowId('job-1', 1, 7)).toBe('job-1/shard-7');
    expect(unitWorkflowId('job-1', 3, 0)).toBe('job-1/round-3/shard-0');
  });
  it('reads Retry-After in seconds, milliseconds and as a date', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '3' }))).toBe(3000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250' }))).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': new Date(10_000).toUTCString() }), 4000)).toBe(6000);
    expect(retryAfterMs(new Headers({}))).toBeUndefined();
  });
});
