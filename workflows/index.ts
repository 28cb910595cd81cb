// The workflow bundle's entry: every workflow type the worker registers.
export { batchJob } from './job.ts';
export { shardBatch } from './shard-report.ts';
export { batchWatcher } from './watcher.ts';
