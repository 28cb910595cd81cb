// OpenTelemetry traces for the CLI's client and for workers, exported as OTLP/HTTP (JSON) when the
// standard OTEL_* variables ask for it. Off by default: then no tracer provider is registered, no
// exporter exists, the client and activities get no interceptors and provider calls are not wrapped.
// The workflow-side interceptors are always in the bundle (a prebuilt bundle cannot depend on the
// environment of the worker that later loads it); with tracing off their spans go to a sink that
// drops them.
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { batchpilotVersion } from './version.ts';

export interface TracingSettings {
  /** Where spans are POSTed: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  url: string;
  serviceName: string;
}

/** The OTEL_* variables batchpilot honours, as validated by common/config.ts. */
export interface TracingEnv {
  OTEL_TRACES_EXPORTER?: 'otlp' | 'none' | undefined;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
  OTEL_SERVICE_NAME?: string | undefined;
}

/** The collector's default OTLP/HTTP address, used when only OTEL_TRACES_EXPORTER=otlp is set. */
export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318';

/**
 * Tracing is on when an OTLP endpoint is set or OTEL_TRACES_EXPORTER=otlp, and off when nothing is
 * set or OTEL_TRACES_EXPORTER=none (the standard way to switch it off while keeping the endpoint).
 */
export function tracingSettings(e: TracingEnv, defaultServiceName: string): TracingSettings | undefined {
  if (e.OTEL_TRACES_EXPORTER === 'none') return undefined;
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT && !base && e.OTEL_TRACES_EXPORTER !== 'otlp') return undefined;
  const url =
    e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    `${(base ?? DEFAULT_OTLP_ENDPOINT).replace(/\/+$/, '')}/v1/traces`;
  return { url, serviceName: e.OTEL_SERVICE_NAME ?? defaultServiceName };
}

export interface Tracing {
  /** Receives every finished span, the workflows' included (they arrive through a sink). */
  processor: SpanProcessor;
  resource: Resource;
}

let active: { tracing: Tracing; provider: BasicTracerProvider } | undefined;

/**
 * Registers the process's tracer provider, W3C propagation and async context once; later calls
 * return the same one. Undefined when tracing is off.
 */
export function startTracing(settings: TracingSettings | undefined): Tracing | undefined {
  if (!settings) return undefined;
  if (active) return active.tracing;
  const resource = new Resource({
    'service.name': settings.serviceName,
    'service.version': batchpilotVersion(),
  });
  // Only the endpoint is given: headers (OTEL_EXPORTER_OTLP_HEADERS, which may hold a collector's
  // token) are read by the exporter itself and never become span data.
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.url }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [processor] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  active = { tracing: { processor, resource }, provider };
  return active.tracing;
}

/** Sends the spans still buffered; a process calls it before it exits. */
export async function flushTracing(): Promise<void> {
  await active?.provider.forceFlush();
}

/** Flushes and stops the exporter, so a short CLI command does not exit with spans unsent. */
export async function shutdownTracing(): Promise<void> {
  if (!active) return;
  const { provider } = active;
  active = undefined;
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
}
