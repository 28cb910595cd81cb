// Signals and queries of the job workflow (names from common/definitions.ts).
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { PROGRESS_QUERY } from '../common/definitions.ts';
import type { JobProgress, UnitUpdate } from '../common/job-types.ts';

export const progressQuery = defineQuery<JobProgress>(PROGRESS_QUERY);
/** Sent by a shard workflow to its job when its batch is created or changes status. */
export const unitUpdateSignal = defineSignal<[UnitUpdate]>('unitUpdate');
