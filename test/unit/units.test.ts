import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseSize } from '../../common/units.ts';

describe('parseSize', () => {
  it('reads decimal and binary units and plain bytes', () => {
    expect(parseSize('500MB')).toBe(500_000_000);
    expect(parseSize('6MiB')).toBe(6 * 1024 * 1024);
    expect(parseSize('1024')).toBe(1024);
    expect(parseSize('1.5kb')).toBe(1500);
  });
  it('names the accepted forms on a bad size', () => {
    expect(() => parseSize('lots')).toThrow(/500MB/);
    expect(() => parseSize('5 parsecs')).toThrow(/invalid size/);
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m, h and d', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1d')).toBe(86_400_000);
  });
  it('refuses a bare number', () => {
    expect(() => parseDuration('90')).toThrow(/90s/);
  });
  it('formats for people', () => {
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(125_000)).toBe('2m 05s');
    expect(formatDuration(3_720_000)).toBe('1h 02m');
  });
});
