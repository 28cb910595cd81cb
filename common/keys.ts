// Deterministic names derived from the job id. The idempotency key goes into the batch metadata and
// the uploaded file's name, so a retried activity finds what an earlier attempt made.

export function unitKey(jobId: string, round: number, index: number): string {
  return `${jobId}/shard-${index}/round-${round}`;
}

/** Child workflow id: `<jobId>/shard-<n>` in round 1, `<jobId>/round-<r>/shard-<n>` for retries. */
export function unitWorkflowId(jobId: string, round: number, index: number): string {
  return round === 1 ? `${jobId}/shard-${index}` : `${jobId}/round-${round}/shard-${index}`;
}

/** Provider file name for a unit's input: the key made safe for a file name. */
export function unitFileName(key: string): string {
  return `bp_${key.replace(/[^A-Za-z0-9._-]+/g, '_')}.jsonl`;
}
