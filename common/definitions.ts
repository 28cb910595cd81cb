// Names shared by worker, client and tests: one place for each, so they can never drift apart.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

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

/** The same attributes as typed keys, for `typedSearchAttributes` on starts and schedules. */
export const SEARCH_ATTRIBUTE_KEYS = {
  status: defineSearchAttributeKey(SEARCH_ATTRIBUTES.status.name, SearchAttributeType.KEYWORD),
  input: defineSearchAttributeKey(SEARCH_ATTRIBUTES.input.name, SearchAttributeType.KEYWORD),
  linesTotal: defineSearchAttributeKey(SEARCH_ATTRIBUTES.linesTotal.name, SearchAttributeType.INT),
  linesFailed: defineSearchAttributeKey(SEARCH_ATTRIBUTES.linesFailed.name, SearchAttributeType.INT),
};

/** Batch metadata key that carries the idempotency key `<jobId>/shard-<n>/round-<r>`. */
export const BATCH_KEY_METADATA = 'batchpilot_key';
export const JOB_ID_METADATA = 'batchpilot_job';
