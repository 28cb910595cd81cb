// The Temporal runtime of a worker process: Core's logs forwarded into the one pino root, and
// Prometheus metrics when an address is configured. Installed once per process.
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';

let installed = false;

/**
 * @param shutdownSignals signals on which the runtime stops every worker of the process; `run`
 *   passes none, because it handles Ctrl-C itself and needs its worker to carry out the cancel.
 */
export function installRuntime(
  logger: Logger,
  metricsAddress?: string,
  shutdownSignals?: NodeJS.Signals[],
): void {
  if (installed) return;
  installed = true;
  const sdkLog = logger.child({ component: 'temporal' });
  const level = (logger.level === 'silent' ? 'ERROR' : logger.level.toUpperCase()) as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level === ('FATAL' as LogLevel) ? 'ERROR' : level, (entry) => {
      const fields = { ...(entry.meta ?? {}) };
      const method =
        entry.level === 'TRACE'
          ? 'trace'
          : entry.level === 'DEBUG'
            ? 'debug'
            : entry.level === 'INFO'
              ? 'info'
              : entry.level === 'WARN'
                ? 'warn'
                : 'error';
      sdkLog[method](fields, entry.message);
    }),
    ...(shutdownSignals ? { shutdownSignals } : {}),
    ...(metricsAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } }
      : {}),
  });
}
