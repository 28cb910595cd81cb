// A provider batch as the workflows see it: status (one of the Batch API's), counts, file ids and
// the first errors, small enough for workflow history.
import type OpenAI from 'openai';
import { BATCH_STATUSES, type BatchStatus, type BatchView } from '../common/job-types.ts';
import { readError } from './classify.ts';

const MAX_ERRORS_IN_VIEW = 20;

/**
 * A status outside the Batch API's list (a provider's own, or one added later) reads as a batch still
 * running: the workflow keeps polling it, as it does any status that is not an end.
 */
function knownStatus(s: string): BatchStatus {
  return (BATCH_STATUSES as readonly string[]).includes(s) ? (s as BatchStatus) : 'in_progress';
}

export function toView(b: OpenAI.Batches.Batch): BatchView {
  const rc = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
  const errors = (b.errors?.data ?? []).slice(0, MAX_ERRORS_IN_VIEW).map((e) => {
    const { code, message } = readError(e);
    return {
      code: code ?? 'unknown',
      message: message ?? '',
      line: typeof e.line === 'number' ? e.line : null,
    };
  });
  return {
    id: b.id,
    status: knownStatus(b.status),
    outputFileId: b.output_file_id ?? null,
    errorFileId: b.error_file_id ?? null,
    requestCounts: { total: rc.total, completed: rc.completed, failed: rc.failed },
    errors,
  };
}
