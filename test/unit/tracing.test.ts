// When tracing is on and where spans go, from the standard OTEL_* variables; and the route a
// provider request is recorded as.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../common/config.ts';
import { tracingSettings } from '../../common/tracing.ts';
import { providerRoute } from '../../worker/provider-spans.ts';

describe('tracing settings', () => {
  it('is off when no OTEL variable is set, or when the exporter is none', () => {
    expect(tracingSettings({}, 'batchpilot')).toBeUndefined();
    expect(
      tracingSettings(
        { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' },
        'batchpilot',
      ),
    ).toBeUndefined();
    expect(loadConfig({}).tracing).toBeUndefined();
  });
  it('posts to <endpoint>/v1/traces, or to the traces endpoint as given', () => {
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }, 'batchpilot')).toEqual({
      url: 'http://c:4318/v1/traces',
      serviceName: 'batchpilot',
    });
    expect(
      tracingSettings(
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:9999/traces',
          OTEL_SERVICE_NAME: 'nightly',
        },
        'batchpilot',
      ),
    ).toEqual({ url: 'http://t:9999/traces', serviceName: 'nightly' });
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' }, 'batchpilot')?.url).toBe(
      'http://localhost:4318/v1/traces',
    );
  });
  it('refuses exporters it does not have and endpoints that are not URLs, naming the variable', () => {
    expect(() => loadConfig({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(
      /OTEL_TRACES_EXPORTER: must be otlp or none/,
    );
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: must be a URL/,
    );
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing?.url).toBe(
      'http://collector:4318/v1/traces',
    );
  });
});

describe('provider routes', () => {
  it.each([
    ['POST', '/v1/files', 'upload'],
    ['GET', '/v1/files', 'list-files'],
    ['GET', '/v1/files/file-1', 'retrieve-file'],
    ['DELETE', '/v1/files/file-1', 'delete'],
    ['GET', '/compatible-mode/v1/files/file-1/content', 'content'],
    ['POST', '/v1/batches', 'create'],
    ['GET', '/v1/batches', 'list'],
    ['GET', '/v1/batches/batch_1', 'retrieve'],
    ['POST', '/v1/batches/batch_1/cancel', 'cancel'],
    ['POST', '/api/v1/chat/completions', 'chat'],
    ['GET', '/v1/models', 'other'],
  ])('%s %s is %s', (method, pathname, route) => {
    expect(providerRoute(method, pathname)).toBe(route);
  });
});
