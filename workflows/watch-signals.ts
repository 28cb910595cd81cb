// Signals between shard workflows and the batch watcher (names from common/batch-watch.ts).
import { defineSignal } from '@temporalio/workflow';
import { WAKE_SIGNAL, WATCH_SIGNAL, type BatchWake, type WatchRegistration } from '../common/batch-watch.ts';

export const watchBatchSignal = defineSignal<[WatchRegistration]>(WATCH_SIGNAL);
export const batchWakeSignal = defineSignal<[BatchWake]>(WAKE_SIGNAL);
