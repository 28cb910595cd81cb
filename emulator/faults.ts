// Fault and timing settings (docs/emulator.md): one zod schema for `--faults` files and
// `POST /_emulator/faults`, resolved once into a complete object so the rest reads no defaults.
import { z } from 'zod';
import { ROUTE_NAMES, type RouteName } from './routes.ts';

export const QUIRKS = [
  'failed-lines-in-output',
  'completed-without-output-file',
  'error-code-fields',
  'no-list-routes',
  'batch-error-line',
  'malformed-output-line',
] as const;
export type Quirk = (typeof QUIRKS)[number];

export interface HttpFaults {
  /** Probability that a request on one of `routes` is answered with one of `statuses` instead. */
  rate?: number;
  statuses?: number[];
  routes?: RouteName[];
}

export interface FaultSettings {
  seed?: number;
  validatingMs?: number;
  perLineMs?: number;
  finalizingMs?: number;
  /**
   * Compresses the batch clock: `validatingMs`, `perLineMs` and `finalizingMs` are simulated time,
   * run `timeScale` times faster (a batch of 24 simulated hours takes 24 h / timeScale).
   */
  timeScale?: number;
  http?: HttpFaults;
  lineRetryableRate?: number;
  linePermanentRate?: number;
  expireRate?: number;
  expireAfterFraction?: number;
  failBatchRate?: number;
  quirks?: Quirk[];
  /** How long the synchronous Batch Chat API holds a request before answering (its queueing delay). */
  chatDelayMs?: number;
  /** Requests a minute per route, enforced with 429s; `published`: the profile's published limits. */
  rateLimits?: 'published' | Partial<Record<RouteName, number>>;
  /**
   * OpenAI's enqueued-token limit: input tokens a model may have in batches not yet finished, for
   * every model (a number) or per model; a batch that would pass it fails validation.
   */
  enqueuedTokenLimit?: number | Record<string, number>;
}

export interface ResolvedFaults {
  seed: number;
  validatingMs: number;
  perLineMs: number;
  finalizingMs: number;
  http: { rate: number; statuses: number[]; routes: RouteName[] };
  lineRetryableRate: number;
  linePermanentRate: number;
  expireRate: number;
  expireAfterFraction: number;
  failBatchRate: number;
  quirks: Quirk[];
  chatDelayMs: number;
  rateLimits: 'published' | Partial<Record<RouteName, number>>;
  enqueuedTokenLimit: number | Record<string, number> | null;
}

const rate = z.number().min(0).max(1);
const ms = z.number().int().min(0);

/** Unknown keys are refused: a typo in a faults file should not silently mean "no fault". */
export const faultSettingsSchema = z.strictObject({
  seed: z.number().int().optional(),
  validatingMs: ms.optional(),
  perLineMs: z.number().min(0).optional(),
  finalizingMs: ms.optional(),
  timeScale: z.number().positive().optional(),
  http: z
    .strictObject({
      rate: rate.optional(),
      statuses: z.array(z.number().int().min(400).max(599)).min(1).optional(),
      routes: z.array(z.enum(ROUTE_NAMES)).optional(),
    })
    .optional(),
  lineRetryableRate: rate.optional(),
  linePermanentRate: rate.optional(),
  expireRate: rate.optional(),
  expireAfterFraction: rate.optional(),
  failBatchRate: rate.optional(),
  quirks: z.array(z.enum(QUIRKS)).optional(),
  chatDelayMs: ms.optional(),
  rateLimits: z
    .union([z.literal('published'), z.partialRecord(z.enum(ROUTE_NAMES), z.number().positive())])
    .optional(),
  enqueuedTokenLimit: z
    .union([z.number().int().positive(), z.record(z.string(), z.number().int().positive())])
    .optional(),
}) satisfies z.ZodType<FaultSettings>;

/** Routes that http faults hit when `http.routes` is not given: the provider's API, not `/_emulator`. */
const DEFAULT_FAULT_ROUTES: RouteName[] = [
  'upload',
  'content',
  'files',
  'create',
  'retrieve',
  'cancel',
  'list',
  'chat',
];

/** Parses untrusted settings (a faults file, a POST body); throws with every problem named. */
export function parseFaultSettings(input: unknown): FaultSettings {
  const result = faultSettingsSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid fault settings: ${problems.join('; ')}`);
  }
  return result.data;
}

/** Fills every default (contract: 1000 / 5 / 1000 ms timing and no faults when nothing is set). */
export function resolveFaults(s: FaultSettings = {}): ResolvedFaults {
  // The resolved times are wall-clock: the processor never needs to know the clock was compressed.
  const scale = s.timeScale ?? 1;
  return {
    seed: s.seed ?? 0,
    validatingMs: (s.validatingMs ?? 1000) / scale,
    perLineMs: (s.perLineMs ?? 5) / scale,
    finalizingMs: (s.finalizingMs ?? 1000) / scale,
    http: {
      rate: s.http?.rate ?? 0,
      statuses: s.http?.statuses ?? [429, 500, 503],
      routes: s.http?.routes ?? DEFAULT_FAULT_ROUTES,
    },
    lineRetryableRate: s.lineRetryableRate ?? 0,
    linePermanentRate: s.linePermanentRate ?? 0,
    expireRate: s.expireRate ?? 0,
    expireAfterFraction: s.expireAfterFraction ?? 0.5,
    failBatchRate: s.failBatchRate ?? 0,
    quirks: s.quirks ?? [],
    chatDelayMs: s.chatDelayMs ?? 100,
    rateLimits: s.rateLimits ?? {},
    enqueuedTokenLimit: s.enqueuedTokenLimit ?? null,
  };
}

/** The enqueued-token limit in force for `model`, or undefined when it has none. */
export function enqueuedTokenLimitFor(f: ResolvedFaults, model: string): number | undefined {
  const limit = f.enqueuedTokenLimit;
  if (limit === null) return undefined;
  return typeof limit === 'number' ? limit : limit[model];
}
