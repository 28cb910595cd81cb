// The Temporal runtime of a worker process: Core's logs forwarded into the one pino root, and
// Prometheus metrics when an address is configured. Installed once per process.
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';

let installed = false;

/**
 * SDK warnings that describe batchpilot's design, not a problem: the workers of the call-class task
 * queues (worker/worker.ts) run activities only, and each would warn at start that it polls no
 * workflow tasks. They stay visible at debug level.
 */
const EXPECTED_WARNINGS = new Set(['No workflows registered, not polling for workflow tasks']);

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
  const pinoLevel = (logger.level === 'silent' ? 'ERROR' : logger.level.toUpperCase()) as LogLevel | 'FATAL';
  const level: LogLevel = pinoLevel === 'FATAL' ? 'ERROR' : pinoLevel;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      const fields = { ...(entry.meta ?? {}) };
      const method = EXPECTED_WARNINGS.has(entry.message)
        ? 'debug'
        : entry.level === 'TRACE'
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
    telemetryOptions: {
      // Without `forward`, Core prints its own lines to the console past pino (and its redaction).
      logging: { filter: { core: coreLevel(level), other: 'ERROR' }, forward: {} },
      ...(metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress } } } : {}),
    },
  });
}

/** Core's own filter: its INFO lines are per-poll chatter, so they show only when debugging. */
function coreLevel(level: LogLevel): LogLevel {
  if (level === 'TRACE' || level === 'DEBUG' || level === 'ERROR') return level;
  return 'WARN';
}
