// Provider calls as spans: every HTTP request the provider client makes becomes a client span named
// for its route (upload, create, retrieve, list, content, cancel, delete, chat…) with the method, the
// host, the path and the HTTP status. Wrapping the client's fetch catches every call, the SDK's own
// retries included, where wrapping our call sites would miss those. Only the route, method, host,
// path and status are recorded: headers (the key) and bodies (the requests) never are.
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { batchpilotVersion } from '../common/version.ts';

/** The Batch API operation a request is, from its method and path (any base path before it). */
export function providerRoute(method: string, pathname: string): string {
  const m = method.toUpperCase();
  if (/\/chat\/completions$/.test(pathname)) return 'chat';
  const files = /\/files(?:\/([^/]+))?(\/content)?$/.exec(pathname);
  if (files) {
    if (files[2]) return 'content';
    if (!files[1]) return m === 'POST' ? 'upload' : 'list-files';
    return m === 'DELETE' ? 'delete' : 'retrieve-file';
  }
  const batches = /\/batches(?:\/([^/]+))?(\/cancel)?$/.exec(pathname);
  if (batches) {
    if (batches[2]) return 'cancel';
    if (!batches[1]) return m === 'POST' ? 'create' : 'list';
    return 'retrieve';
  }
  return 'other';
}

type Fetch = typeof fetch;

/** `inner` with a span around each request; the active span (the activity's) is its parent. */
export function tracedFetch(inner: Fetch): Fetch {
  const tracer = trace.getTracer('batchpilot.provider', batchpilotVersion());
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const route = providerRoute(method, url.pathname);
    return tracer.startActiveSpan(
      `provider ${route}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'batchpilot.provider.route': route,
          'http.request.method': method,
          'server.address': url.hostname,
          'url.path': url.pathname,
        },
      },
      async (span) => {
        try {
          const res = await inner(input, init);
          span.setAttribute('http.response.status_code', res.status);
          if (res.status >= 400)
            span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${res.status}` });
          return res;
        } catch (err) {
          // The error's class only: a message can carry the URL with its query string.
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name ?? 'Error' });
          throw err;
        } finally {
          span.end();
        }
      },
    );
  };
}
