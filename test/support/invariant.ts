// The contract's invariant over a job's outputs: every input line in exactly one of results,
// errors and rejected; lines.total = succeeded + failed + rejected; no custom_id twice; and the
// emulator made exactly one batch per uploaded input file (plus those sent again after a refusal).
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { readJsonl, type Harness } from './harness.ts';

export async function expectInvariant(
  h: Pick<Harness, 'stats'>,
  outDir: string,
  totalLines: number,
): Promise<void> {
  const results = readJsonl<{ custom_id: string }>(path.join(outDir, 'results.jsonl'));
  const errors = readJsonl<{ custom_id: string; attempts: number; error: { code: string } }>(
    path.join(outDir, 'errors.jsonl'),
  );
  const rejected = readJsonl<{ line: number; custom_id?: string }>(path.join(outDir, 'rejected.jsonl'));
  const summary = JSON.parse(fs.readFileSync(path.join(outDir, 'summary.json'), 'utf8'));
  expect(results.length + errors.length + rejected.length).toBe(totalLines);
  expect(summary.lines.total).toBe(totalLines);
  expect(summary.lines.succeeded).toBe(results.length);
  expect(summary.lines.failed).toBe(errors.length);
  expect(summary.lines.rejected).toBe(rejected.length);
  const ids = [...results, ...errors].map((r) => r.custom_id);
  expect(new Set(ids).size).toBe(ids.length);
  // One batch per uploaded file, and one more for each batch the emulator refused for the
  // enqueued-token limit, which the unit waited out and sent again from the same file.
  const stats = await h.stats();
  let resent = 0;
  for (const [fileId, n] of Object.entries(stats.batchesByInputFile)) {
    expect(n, `batches for ${fileId}`).toBeGreaterThanOrEqual(1);
    resent += n - 1;
  }
  expect(resent, 'batches sent again after a token-limit refusal').toBe(summary.tokenLimitWaits ?? 0);
}
