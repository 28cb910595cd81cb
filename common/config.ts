// Configuration from the environment as one schema (the variables README.md lists). Parsed once at an
// entry point with loadConfig(process.env); a bad value is an error naming the variable and the fix.
import path from 'node:path';
import { z } from 'zod';
import {
  ANSWERS_DIR_NAME,
  DEFAULT_ANSWERS_FILTER_BYTES,
  DEFAULT_ANSWERS_MAX_BYTES,
} from '../storage/answers.ts';
import { DEFAULT_TASK_QUEUE } from './definitions.ts';
import { PROFILES, PROFILE_NAMES, type Profile, type ProfileName } from './profiles.ts';
import { parseRateLimits, type RateLimits } from './rate-limits.ts';
import { parseDuration, parseSize } from './units.ts';
import { loadTemporalConnection, type TemporalConnectionSettings } from './temporal-connection.ts';
import { tracingSettings, type TracingSettings } from './tracing.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:9464');

/** An optional size variable (`4GB`, `500MB`): positive bytes, or an error showing `examples`. */
function sizeVar(examples: string) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        const bytes = parseSize(text);
        if (bytes > 0) return bytes;
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: `must be a size such as ${examples}` });
      return z.NEVER;
    })
    .optional();
}

const schema = z.object({
  // The Temporal connection is read by common/temporal-connection.ts; listed here so that every
  // variable batchpilot reads is in CONFIG_VARIABLES.
  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: z.string().min(1).optional(),
  TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  TEMPORAL_CONFIG_FILE: z.string().min(1).optional(),
  TEMPORAL_PROFILE: z.string().min(1).optional(),
  BATCHPILOT_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  BATCHPILOT_PROVIDER: z
    .enum(PROFILE_NAMES, { error: `must be one of ${PROFILE_NAMES.join(', ')}` })
    .optional(),
  BATCHPILOT_BASE_URL: z.url({ error: 'must be a URL such as https://host/v1' }).optional(),
  BATCHPILOT_API_KEY: z.string().min(1).optional(),
  DASHSCOPE_API_KEY: z.string().min(1).optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  BATCHPILOT_DATA_DIR: z.string().min(1).default('./batchpilot-data'),
  BATCHPILOT_STORAGE: z
    .string()
    .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, {
      error: 'must be s3://<bucket>/<prefix> (bucket in lower case), or unset for the local data root',
    })
    .optional(),
  BATCHPILOT_SCRATCH_DIR: z.string().min(1).optional(),
  BATCHPILOT_ANSWERS_DIR: z.string().min(1).optional(),
  BATCHPILOT_ANSWERS_MAX_BYTES: sizeVar('4GB or 500MB'),
  BATCHPILOT_ANSWERS_FILTER_BYTES: sizeVar('64MB or 256MB'),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  BATCHPILOT_METRICS_ADDRESS: hostPort.optional(),
  BATCHPILOT_MAX_IN_FLIGHT: z.coerce
    .number({ error: 'must be a positive whole number' })
    .int('must be a positive whole number')
    .positive('must be a positive whole number')
    .optional(),
  BATCHPILOT_UNREACHABLE_AFTER: z
    .string()
    .transform((text, ctx) => {
      try {
        const ms = parseDuration(text);
        if (ms >= 1000) return ms;
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1s, e.g. 3m or 90s' });
      return z.NEVER;
    })
    .optional(),
  BATCHPILOT_RATE_LIMITS: z
    .string()
    .transform((text, ctx): RateLimits | 'off' => {
      try {
        return parseRateLimits(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),
  BATCHPILOT_WORKFLOW_BUNDLE: z.string().min(1).optional(),
  BATCHPILOT_CODEC_KEY: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (a 256-bit AES key)')
    .optional(),
  BATCHPILOT_CODEC_AUTH: z.string().min(1).optional(),
  BATCHPILOT_BUILD_ID: z
    .string()
    .regex(/^[\w.+@-]{1,255}$/, 'must be letters, digits and . + @ - _ (e.g. 1.4.0 or a git sha)')
    .optional(),
  // OpenTelemetry's standard variables (common/tracing.ts); traces go out as OTLP/HTTP JSON only.
  OTEL_TRACES_EXPORTER: z
    .enum(['otlp', 'none'], { error: 'must be otlp or none (batchpilot exports traces as OTLP/HTTP)' })
    .optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z
    .url({ protocol: /^https?$/, error: 'must be a URL such as http://collector:4318 (OTLP/HTTP)' })
    .optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z
    .url({
      protocol: /^https?$/,
      error: 'must be a URL such as http://collector:4318/v1/traces (OTLP/HTTP)',
    })
    .optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
});

/** Every environment variable batchpilot reads. */
export const CONFIG_VARIABLES = Object.keys(schema.shape);

export interface Config {
  temporal: TemporalConnectionSettings & { namespace: string; taskQueue: string };
  provider: {
    profile: Profile;
    /** Whether the provider was chosen implicitly because no key is set. */
    implicitEmulator: boolean;
    baseUrl: string | undefined;
    apiKey: string | undefined;
  };
  dataDir: string;
  /** BATCHPILOT_STORAGE: `s3://bucket/prefix` puts relative inputs and outputs in object storage. */
  storage: string | undefined;
  /** BATCHPILOT_SCRATCH_DIR: a worker's scratch root on object storage (OS temp dir when unset). */
  scratchDir: string | undefined;
  /**
   * Answers kept for reuse by later jobs: their folder (BATCHPILOT_ANSWERS_DIR, default beside the
   * data root's contents), size bound and the memory bound of a plan's key filter
   * (BATCHPILOT_ANSWERS_FILTER_BYTES); undefined when BATCHPILOT_ANSWERS_DIR is `off`.
   */
  answers: { dir: string; maxBytes: number; filterBytes: number } | undefined;
  logLevel: (typeof LOG_LEVELS)[number];
  metricsAddress: string | undefined;
  maxInFlight: number | undefined;
  /** BATCHPILOT_UNREACHABLE_AFTER in ms: how long provider calls may fail before it is said loudly. */
  unreachableAfterMs: number | undefined;
  temporalCliPath: string | undefined;
  /** A prebuilt workflow bundle (scripts/bundle-workflows.ts); built at start when unset. */
  workflowBundle: string | undefined;
  codecKey: string | undefined;
  /** The Authorization value `codec-server` requires of callers, when set. */
  codecAuth: string | undefined;
  /** BATCHPILOT_BUILD_ID: the version workers report to Temporal; the SDK derives one from the bundle when unset. */
  buildId: string | undefined;
  /** OTLP/HTTP trace export from the OTEL_* variables; undefined (off) when none is set. */
  tracing: TracingSettings | undefined;
}

/** Thrown for a bad environment; the CLI prints the message and exits 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates the environment and resolves the provider profile, base URL and key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const blankless = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(blankless);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  let temporal: TemporalConnectionSettings;
  try {
    temporal = loadTemporalConnection(blankless as Record<string, string>);
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  ${(err as Error).message}`);
  }
  const anyKey = e.BATCHPILOT_API_KEY ?? e.DASHSCOPE_API_KEY ?? e.OPENAI_API_KEY;
  const profileName: ProfileName = e.BATCHPILOT_PROVIDER ?? (anyKey ? 'dashscope-intl' : 'emulator');
  const limits = e.BATCHPILOT_RATE_LIMITS;
  // BATCHPILOT_RATE_LIMITS replaces the profile's figures: `off`, or what the account really has.
  const profile: Profile =
    limits === undefined
      ? PROFILES[profileName]
      : { ...PROFILES[profileName], rateLimits: limits === 'off' ? undefined : limits };
  const apiKey = e.BATCHPILOT_API_KEY ?? (profile.keyFallback ? e[profile.keyFallback] : undefined);
  const baseUrl = e.BATCHPILOT_BASE_URL ?? profile.baseUrl;
  if (profileName === 'custom' && !baseUrl) {
    throw new ConfigError(
      'invalid configuration:\n  BATCHPILOT_BASE_URL: required with BATCHPILOT_PROVIDER=custom',
    );
  }
  if (profileName !== 'emulator' && !apiKey) {
    const fallback = profile.keyFallback ? ` (or ${profile.keyFallback})` : '';
    throw new ConfigError(
      `invalid configuration:\n  BATCHPILOT_API_KEY: required for provider ${profileName}${fallback}`,
    );
  }
  return {
    temporal: { ...temporal, namespace: temporal.namespace ?? 'default', taskQueue: e.BATCHPILOT_TASK_QUEUE },
    provider: { profile, implicitEmulator: !e.BATCHPILOT_PROVIDER && !anyKey, baseUrl, apiKey },
    dataDir: e.BATCHPILOT_DATA_DIR,
    storage: e.BATCHPILOT_STORAGE,
    scratchDir: e.BATCHPILOT_SCRATCH_DIR,
    answers:
      e.BATCHPILOT_ANSWERS_DIR === 'off'
        ? undefined
        : {
            dir: e.BATCHPILOT_ANSWERS_DIR ?? path.join(e.BATCHPILOT_DATA_DIR, ANSWERS_DIR_NAME),
            maxBytes: e.BATCHPILOT_ANSWERS_MAX_BYTES ?? DEFAULT_ANSWERS_MAX_BYTES,
            filterBytes: e.BATCHPILOT_ANSWERS_FILTER_BYTES ?? DEFAULT_ANSWERS_FILTER_BYTES,
          },
    logLevel: e.LOG_LEVEL,
    metricsAddress: e.BATCHPILOT_METRICS_ADDRESS,
    maxInFlight: e.BATCHPILOT_MAX_IN_FLIGHT,
    unreachableAfterMs: e.BATCHPILOT_UNREACHABLE_AFTER,
    temporalCliPath: e.TEMPORAL_CLI_PATH,
    workflowBundle: e.BATCHPILOT_WORKFLOW_BUNDLE,
    codecKey: e.BATCHPILOT_CODEC_KEY,
    codecAuth: e.BATCHPILOT_CODEC_AUTH,
    buildId: e.BATCHPILOT_BUILD_ID,
    tracing: tracingSettings(e, 'batchpilot'),
  };
}
