// Provider request rate limits as facts, by call class, and how a fleet of workers shares them.
// The figures per profile live in common/profiles.ts; this module names the classes, parses
// BATCHPILOT_RATE_LIMITS and turns limits into the task-queue rates the workers set
// (docs/providers.md, Rate limits and pacing).

/** The provider calls batchpilot makes, grouped by the limit each one spends. */
export const CALL_CLASSES = ['create', 'retrieve', 'cancel', 'list', 'upload', 'download', 'delete'] as const;
export type CallClass = (typeof CALL_CLASSES)[number];

/** Requests a minute the provider allows per call class; a class left out is not limited (or not known). */
export type RateLimits = Partial<Record<CallClass, number>>;

/**
 * DashScope's published limits: batch create, retrieve and cancel 1,000 a minute each, batch list
 * 100 a minute, file upload about 3 a second, other file calls (content download, delete) 10 a
 * second each.
 */
export const DASHSCOPE_RATE_LIMITS: RateLimits = {
  create: 1000,
  retrieve: 1000,
  cancel: 1000,
  list: 100,
  upload: 180,
  download: 600,
  delete: 600,
};

/**
 * The part of a published limit the fleet plans to use. The rest absorbs what the task-queue rate
 * does not see: dispatch and network jitter bunching calls that left evenly, and the rare lookup an
 * activity makes on a retried attempt (activities/batches.ts).
 */
export const PACING_SHARE = 0.8;

/**
 * Which activities run on which call-class task queue, and the most calls of each class one
 * attempt makes on a clean run. A queue's rate is the share of each class's limit divided by those
 * calls, the smallest over the classes it spends.
 */
export const CALL_QUEUES = {
  uploadUnit: { queue: 'upload', calls: { upload: 1 } },
  createBatch: { queue: 'create', calls: { create: 1 } },
  getBatch: { queue: 'retrieve', calls: { retrieve: 1 } },
  cancelBatch: { queue: 'cancel', calls: { cancel: 1 } },
  findUnitBatch: { queue: 'list', calls: { list: 1 } },
  // A sweep of the batch watcher pages through lists (⌈batches / 100⌉ calls and a few more) and
  // spaces them itself at this class's rate (activities/watch.ts): the task queue's watcher makes
  // one sweep at a time, so the queue need only admit it.
  sweepBatches: { queue: 'list', calls: { list: 1 } },
  // An input, an output and an error file per batch.
  deleteRemoteFiles: { queue: 'delete', calls: { delete: 3 } },
  // The output and the error file.
  collectUnit: { queue: 'download', calls: { download: 2 } },
} as const satisfies Record<string, { queue: CallClass; calls: RateLimits }>;

export type PacedActivity = keyof typeof CALL_QUEUES;

/** The task queue of a call class beside the fleet's task queue: `<queue>-calls-<class>`. */
export function callQueueName(taskQueue: string, cls: CallClass): string {
  return `${taskQueue}-calls-${cls}`;
}

/** The call-class queues that carry activities, each once. */
export const PACED_CLASSES: CallClass[] = [...new Set(Object.values(CALL_QUEUES).map((q) => q.queue))];

/**
 * Activities a second that a call-class queue may start across the whole fleet, or undefined
 * (no pacing) when none of the classes its activities spend has a known limit. `extra` adds calls
 * an activity makes under this worker's configuration (the in-flight cap's list before a create).
 */
export function queueRate(
  cls: CallClass,
  limits: RateLimits | undefined,
  extra: Partial<Record<PacedActivity, RateLimits>> = {},
): number | undefined {
  if (!limits) return undefined;
  let rate: number | undefined;
  for (const [activity, q] of Object.entries(CALL_QUEUES) as [
    PacedActivity,
    (typeof CALL_QUEUES)[PacedActivity],
  ][]) {
    if (q.queue !== cls) continue;
    const calls: RateLimits = { ...q.calls };
    for (const [c, n] of Object.entries(extra[activity] ?? {}) as [CallClass, number][])
      calls[c] = (calls[c] ?? 0) + n;
    for (const [c, n] of Object.entries(calls) as [CallClass, number][]) {
      const perMinute = limits[c];
      if (perMinute === undefined || n <= 0) continue;
      const r = ((perMinute / 60) * PACING_SHARE) / n;
      rate = rate === undefined ? r : Math.min(rate, r);
    }
  }
  return rate;
}

/**
 * Parses BATCHPILOT_RATE_LIMITS: `off`, or `class=perMinute` pairs separated by commas
 * (`create=1000,retrieve=1000,list=100,upload=180`). Throws a message naming the fix.
 */
export function parseRateLimits(text: string): RateLimits | 'off' {
  const t = text.trim();
  if (t === 'off') return 'off';
  const limits: RateLimits = {};
  for (const part of t.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    const cls = m?.[1] as CallClass | undefined;
    if (!m || !cls || !CALL_CLASSES.includes(cls) || !(Number(m[2]) > 0)) {
      throw new Error(
        `"${part.trim()}" is not a limit: write off, or class=requests-per-minute pairs separated by commas, classes ${CALL_CLASSES.join(', ')} (e.g. create=1000,list=100)`,
      );
    }
    limits[cls] = Number(m[2]);
  }
  return limits;
}

/** Limits in words for a log line: `create 1000/min, list 100/min`, or `unknown (no pacing)`. */
export function describeRateLimits(limits: RateLimits | undefined): string {
  const parts = CALL_CLASSES.filter((c) => limits?.[c] !== undefined).map((c) => `${c} ${limits![c]}/min`);
  return parts.length ? parts.join(', ') : 'unknown (no pacing)';
}
