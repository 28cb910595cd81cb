// Signals and queries of the job workflow (names from common/definitions.ts).
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { PROGRESS_QUERY } from '../common/definitions.ts';
import type { JobProgress, UnitFailure, UnitResult, UnitUpdate } from '../common/job-types.ts';

export const progressQuery = defineQuery<JobProgress>(PROGRESS_QUERY);
/** Sent by a shard workflow to its job when its batch is created or changes status. */
export const unitUpdateSignal = defineSignal<[UnitUpdate]>('unitUpdate');
/**
 * Sent by a shard workflow to its job's workflow id (so to whichever run is current) when it ends
 * with a result: a shard may outlive the run that started it.
 */
export const unitResultSignal = defineSignal<[UnitResult]>('unitResult');
/** Sent by a shard workflow to its job when it fails or is cancelled before it has a result. */
export const unitFailedSignal = defineSignal<[UnitFailure]>('unitFailed');
