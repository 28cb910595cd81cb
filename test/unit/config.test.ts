import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../common/config.ts';

describe('loadConfig', () => {
  it('defaults to the emulator when no key is set', () => {
    const c = loadConfig({});
    expect(c.provider.profile.name).toBe('emulator');
    expect(c.provider.implicitEmulator).toBe(true);
    expect(c.temporal.namespace).toBe('default');
    expect(c.temporal.taskQueue).toBe('batchpilot');
    expect(c.dataDir).toBe('./batchpilot-data');
  });
  it('falls back to the profile key variable', () => {
    const c = loadConfig({ BATCHPILOT_PROVIDER: 'dashscope-cn', DASHSCOPE_API_KEY: 'sk-test' });
    expect(c.provider.apiKey).toBe('sk-test');
    expect(c.provider.baseUrl).toBe('https://dashscope.aliyuncs.com/compatible-mode/v1');
  });
  it('names the variable on a bad value', () => {
    expect(() => loadConfig({ BATCHPILOT_PROVIDER: 'azure' })).toThrow(ConfigError);
    expect(() => loadConfig({ BATCHPILOT_PROVIDER: 'azure' })).toThrow(/BATCHPILOT_PROVIDER: must be one of/);
    expect(() => loadConfig({ BATCHPILOT_MAX_IN_FLIGHT: '-3' })).toThrow(/BATCHPILOT_MAX_IN_FLIGHT/);
    expect(() => loadConfig({ BATCHPILOT_METRICS_ADDRESS: 'nope' })).toThrow(
      /BATCHPILOT_METRICS_ADDRESS: must be host:port/,
    );
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });
  it('reads BATCHPILOT_UNREACHABLE_AFTER as a duration and refuses a bad one by name', () => {
    expect(loadConfig({ BATCHPILOT_UNREACHABLE_AFTER: '90s' }).unreachableAfterMs).toBe(90_000);
    expect(loadConfig({}).unreachableAfterMs).toBeUndefined();
    expect(() => loadConfig({ BATCHPILOT_UNREACHABLE_AFTER: 'soon' })).toThrow(
      /BATCHPILOT_UNREACHABLE_AFTER: must be a duration of at least 1s, e.g. 3m or 90s/,
    );
    expect(() => loadConfig({ BATCHPILOT_UNREACHABLE_AFTER: '10ms' })).toThrow(
      /BATCHPILOT_UNREACHABLE_AFTER/,
    );
  });
  it('reads the answer store’s size and filter bounds, and refuses a bad one by name', () => {
    const c = loadConfig({ BATCHPILOT_ANSWERS_MAX_BYTES: '500MB', BATCHPILOT_ANSWERS_FILTER_BYTES: '256MB' });
    expect(c.answers).toMatchObject({ maxBytes: 500_000_000, filterBytes: 256_000_000 });
    expect(loadConfig({}).answers?.filterBytes).toBe(64 * 1024 ** 2);
    expect(() => loadConfig({ BATCHPILOT_ANSWERS_FILTER_BYTES: 'lots' })).toThrow(
      /BATCHPILOT_ANSWERS_FILTER_BYTES: must be a size such as 64MB or 256MB/,
    );
    expect(() => loadConfig({ BATCHPILOT_ANSWERS_MAX_BYTES: '0' })).toThrow(
      /BATCHPILOT_ANSWERS_MAX_BYTES: must be a size such as 4GB or 500MB/,
    );
  });
  it('requires a key for a real provider', () => {
    expect(() => loadConfig({ BATCHPILOT_PROVIDER: 'openai' })).toThrow(
      /BATCHPILOT_API_KEY: required for provider openai \(or OPENAI_API_KEY\)/,
    );
  });
  it('reads BATCHPILOT_BUILD_ID and refuses one Temporal would not take, by name', () => {
    expect(loadConfig({ BATCHPILOT_BUILD_ID: 'v1.4.0+3f2a9c1' }).buildId).toBe('v1.4.0+3f2a9c1');
    expect(loadConfig({}).buildId).toBeUndefined();
    expect(() => loadConfig({ BATCHPILOT_BUILD_ID: 'build 7' })).toThrow(
      /BATCHPILOT_BUILD_ID: must be letters/,
    );
  });
});
