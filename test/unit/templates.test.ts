import { describe, expect, it } from 'vitest';
import { hasTemplate, resolveTemplate } from '../../common/templates.ts';

describe('resolveTemplate', () => {
  const when = new Date('2026-11-17T23:30:05Z');
  it('uses the scheduled time in UTC by default', () => {
    expect(resolveTemplate('in/{date}.jsonl', when)).toBe('in/2026-11-17.jsonl');
    expect(resolveTemplate('out/{datetime}', when)).toBe('out/2026-11-17T23-30-05');
  });
  it('honours a time zone, crossing midnight', () => {
    expect(resolveTemplate('in/{date}.jsonl', when, 'Asia/Shanghai')).toBe('in/2026-11-18.jsonl');
  });
  it('detects templates', () => {
    expect(hasTemplate('a/{date}.jsonl')).toBe(true);
    expect(hasTemplate('a/b.jsonl')).toBe(false);
  });
});
