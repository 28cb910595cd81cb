import { describe, expect, it } from 'vitest';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmCodec } from '../../common/codec.ts';

const KEY = 'a'.repeat(64);

describe('AesGcmCodec', () => {
  it('round-trips payloads and hides their content', async () => {
    const codec = new AesGcmCodec(KEY);
    const payload = defaultPayloadConverter.toPayload({ input: 'nightly/2026-11-22.jsonl' });
    const [encoded] = await codec.encode([payload]);
    expect(Buffer.from(encoded!.data!).toString('latin1')).not.toContain('nightly');
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ input: 'nightly/2026-11-22.jsonl' });
  });
  it('refuses a tampered payload and a wrong key', async () => {
    const [encoded] = await new AesGcmCodec(KEY).encode([defaultPayloadConverter.toPayload('secret plan')]);
    const tampered = { ...encoded!, data: Buffer.from(encoded!.data!) };
    tampered.data[20] = tampered.data[20]! ^ 1;
    await expect(new AesGcmCodec(KEY).decode([tampered])).rejects.toThrow();
    await expect(new AesGcmCodec('b'.repeat(64)).decode([encoded!])).rejects.toThrow();
  });
  it('insists on a 256-bit key', () => {
    expect(() => new AesGcmCodec('abcd')).toThrow(/64 hex/);
  });
});
