// Rate limits as facts and the task-queue rates the fleet derives from them.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../common/config.ts';
import { PROFILES } from '../../common/profiles.ts';
import {
  CALL_QUEUES,
  DASHSCOPE_RATE_LIMITS,
  PACED_CLASSES,
  PACING_SHARE,
  callQueueName,
  describeRateLimits,
  parseRateLimits,
  queueRate,
} from '../../common/rate-limits.ts';

describe('the profile table', () => {
  it('carries the published limits where the provider publishes them', () => {
    expect(PROFILES['dashscope-intl'].rateLimits).toMatchObject({ create: 1000, list: 100, upload: 180 });
    expect(PROFILES['dashscope-cn'].rateLimits).toBe(PROFILES['dashscope-intl'].rateLimits);
    expect(PROFILES.emulator.rateLimits).toEqual(DASHSCOPE_RATE_LIMITS);
    expect(PROFILES.openai.rateLimits).toBeUndefined();
    expect(PROFILES.custom.rateLimits).toBeUndefined();
  });
});

describe('queue rates', () => {
  it('gives each call class a share of its limit divided by the calls an activity makes', () => {
    const perSecond = (perMinute: number) => (perMinute / 60) * PACING_SHARE;
    expect(queueRate('retrieve', DASHSCOPE_RATE_LIMITS)).toBeCloseTo(perSecond(1000));
    expect(queueRate('list', DASHSCOPE_RATE_LIMITS)).toBeCloseTo(perSecond(100));
    expect(queueRate('upload', DASHSCOPE_RATE_LIMITS)).toBeCloseTo(perSecond(180));
    // Three deletes (input, output, error file) per activity, two downloads per collection.
    expect(queueRate('delete', DASHSCOPE_RATE_LIMITS)).toBeCloseTo(perSecond(600) / 3);
    expect(queueRate('download', DASHSCOPE_RATE_LIMITS)).toBeCloseTo(perSecond(600) / 2);
  });

  it('counts extra calls a configuration adds: the in-flight cap lists before each create', () => {
    const rate = queueRate('create', DASHSCOPE_RATE_LIMITS, { createBatch: { list: 1 } });
    expect(rate).toBeCloseTo((100 / 60) * PACING_SHARE);
  });

  it('does not pace when the limits are unknown', () => {
    expect(queueRate('create', undefined)).toBeUndefined();
    expect(queueRate('create', { list: 100 })).toBeUndefined();
  });

  it('names one queue per class beside the fleet queue, and every paced activity has one', () => {
    expect(callQueueName('batchpilot', 'retrieve')).toBe('batchpilot-calls-retrieve');
    for (const q of Object.values(CALL_QUEUES)) expect(PACED_CLASSES).toContain(q.queue);
    expect(new Set(PACED_CLASSES).size).toBe(PACED_CLASSES.length);
  });
});

describe('BATCHPILOT_RATE_LIMITS', () => {
  it('parses off and class=perMinute pairs', () => {
    expect(parseRateLimits('off')).toBe('off');
    expect(parseRateLimits('create=500, list=50,upload=90.5')).toEqual({
      create: 500,
      list: 50,
      upload: 90.5,
    });
  });

  it('refuses a bad pair, naming it and the form', () => {
    expect(() => parseRateLimits('lists=5')).toThrow(/"lists=5" is not a limit.*create=1000,list=100/);
    expect(() => parseRateLimits('list=0')).toThrow(/"list=0"/);
    expect(() => parseRateLimits('list')).toThrow(/class=requests-per-minute/);
  });

  it('replaces the profile figures: custom gets limits, dashscope can be turned off', () => {
    const custom = loadConfig({
      BATCHPILOT_PROVIDER: 'custom',
      BATCHPILOT_BASE_URL: 'http://llm.local/v1',
      BATCHPILOT_API_KEY: 'k',
      BATCHPILOT_RATE_LIMITS: 'create=60,retrieve=120',
    });
    expect(custom.provider.profile.rateLimits).toEqual({ create: 60, retrieve: 120 });
    const off = loadConfig({ BATCHPILOT_API_KEY: 'k', BATCHPILOT_RATE_LIMITS: 'off' });
    expect(off.provider.profile.name).toBe('dashscope-intl');
    expect(off.provider.profile.rateLimits).toBeUndefined();
    expect(PROFILES['dashscope-intl'].rateLimits).toEqual(DASHSCOPE_RATE_LIMITS);
    expect(() => loadConfig({ BATCHPILOT_RATE_LIMITS: 'fast' })).toThrow(/BATCHPILOT_RATE_LIMITS: "fast"/);
  });

  it('describes limits for the worker log', () => {
    expect(describeRateLimits({ create: 1000, list: 100 })).toBe('create 1000/min, list 100/min');
    expect(describeRateLimits(undefined)).toBe('unknown (no pacing)');
  });
});
