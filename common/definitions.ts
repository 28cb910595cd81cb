// Names shared by worker, client and tests: one place for each, so they can never drift apart.

/** The task queue where BATCHPILOT_TASK_QUEUE is unset. */
export const DEFAULT_TASK_QUEUE = 'batchpilot';
export const JOB_WORKFLOW = 'batchJob';

export const PROGRESS_QUERY = 'progress';

/** Custom search attributes (registered by `batchpilot dev`; create them on a real cluster). */
export const SEARCH_ATTRIBUTES = {
  status: { name: 'BatchpilotStatus', type: 'Keyword' },
  input: { name: 'BatchpilotInput', type: 'Keyword' },
  linesTotal: { name: 'BatchpilotLinesTotal', type: 'Int' },
  linesFailed: { name: 'BatchpilotLinesFailed', type: 'Int' },
} as const;

/** Batch metadata key that carries the idempotency key `<jobId>/shard-<n>/round-<r>`. */
export const BATCH_KEY_METADATA = 'batchpilot_key';
export const JOB_ID_METADATA = 'batchpilot_job';
