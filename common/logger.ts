// The one pino root. Components take child loggers; keys, auth headers and request bodies are
// redacted so no secret or prompt reaches a log line.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  'api_key',
  '*.api_key',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.Authorization',
  '*.headers.Authorization',
  'body',
  '*.body',
  'messages',
  '*.messages',
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Pretty output for people; defaults to "stderr is a TTY". */
  pretty?: boolean;
  destination?: pino.DestinationStream;
}

/** Colour in pretty logs unless NO_COLOR is set to anything (https://no-color.org). */
export function useColor(env: NodeJS.ProcessEnv = process.env): boolean {
  return !env.NO_COLOR;
}

/** Builds the root logger: JSON to stderr by default, pretty on a TTY (coloured unless NO_COLOR). */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const pretty = opts.pretty ?? process.stderr.isTTY;
  const base = { level: opts.level ?? 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (opts.destination) return pino(base, opts.destination);
  if (pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: useColor() } },
    });
  }
  return pino(base, pino.destination(2));
}

export type { Logger };
