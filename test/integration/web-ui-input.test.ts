// A job started the way the Temporal Web UI's Start Workflow form or `temporal workflow start`
// starts it: hand-typed JSON, only the paths. The job spec completes it with the defaults and the
// worker's profile limits; a wrong field fails the job at once, naming the field.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { rootCause } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import { JOB_DEFAULTS, type JobSummary, type PlanSummary } from '../../common/job-types.ts';
import { PROFILES } from '../../common/profiles.ts';
import { startHarness, writeChatInput, type Harness } from '../support/harness.ts';

/** The real Temporal CLI, as scripts/env.sh names it. */
const TEMPORAL_CLI =
  process.env.BATCHPILOT_TEMPORAL_CLI ??
  path.join(os.homedir(), '.cache', 'batchpilot', 'temporal-1.5.1', 'temporal');

describe('a job typed into the Web UI (or temporal workflow start)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  /** `temporal workflow start --type batchJob --input '<json>'`, exactly as a user types it. */
  function temporalStart(id: string, input: unknown): void {
    execFileSync(TEMPORAL_CLI, [
      'workflow',
      'start',
      '--address',
      inject('temporalAddress'),
      '--type',
      JOB_WORKFLOW,
      '--task-queue',
      h.taskQueue,
      '--workflow-id',
      id,
      '--input',
      JSON.stringify(input),
    ]);
  }

  /** The message the job failed with (the test fails if it did not fail). */
  async function failureOf(id: string): Promise<string | undefined> {
    const err = await h.client.workflow
      .getHandle(id)
      .result()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    return rootCause((err as WorkflowFailedError).cause);
  }

  /** The attempt the plan activity ended on (0: it never ran). */
  async function planAttempt(id: string): Promise<number> {
    const history = await h.client.workflow.getHandle(id).fetchHistory();
    const started = (history.events ?? []).find((e) => e.activityTaskStartedEventAttributes);
    return started?.activityTaskStartedEventAttributes?.attempt ?? 0;
  }

  it('completes with the defaults when the input names only the paths', async () => {
    const input = writeChatInput(h.dataDir, 'ui-minimal.jsonl', 12);
    const id = `ui-minimal-${Date.now()}`;
    // Only the poll interval is given: the default (a random 60-120 s) would make the test slow.
    temporalStart(id, { input, outDir: 'out-ui-minimal', options: { pollIntervalMs: 200 } });
    const summary = await h.client.workflow.getHandle(id).result();
    expect((summary as JobSummary).status).toBe('completed');
    expect((summary as JobSummary).lines).toEqual({ total: 12, succeeded: 12, failed: 0, rejected: 0 });
    expect(
      fs.readFileSync(path.join(h.dataDir, 'out-ui-minimal', 'results.jsonl'), 'utf8').split('\n'),
    ).toHaveLength(13);
    // The plan activity returned the options the job ran with: the defaults and the profile's limits.
    const history = await h.client.workflow.getHandle(id).fetchHistory();
    const planned = history.events!.find((e) => e.activityTaskCompletedEventAttributes)!;
    const payload = planned.activityTaskCompletedEventAttributes!.result!.payloads![0]!;
    const plan = JSON.parse(Buffer.from(payload.data!).toString('utf8')) as PlanSummary;
    expect(plan.options).toEqual({
      ...JOB_DEFAULTS,
      limits: PROFILES.emulator.limits,
      pollIntervalMs: 200,
    });
  });

  it('a bare {"input","outDir"} is planned with every default', async () => {
    const input = writeChatInput(h.dataDir, 'ui-bare.jsonl', 3);
    const id = `ui-bare-${Date.now()}`;
    temporalStart(id, { input, outDir: 'out-ui-bare' });
    const handle = h.client.workflow.getHandle(id);
    // Planning is the first step; once it has run the job waits on its batch (a 60-120 s poll).
    let plan: PlanSummary | undefined;
    for (let i = 0; i < 200 && !plan; i++) {
      const history = await handle.fetchHistory();
      const done = history.events!.find((e) => e.activityTaskCompletedEventAttributes);
      if (done) {
        const payload = done.activityTaskCompletedEventAttributes!.result!.payloads![0]!;
        plan = JSON.parse(Buffer.from(payload.data!).toString('utf8')) as PlanSummary;
      } else await new Promise((r) => setTimeout(r, 100));
    }
    expect(plan?.options).toEqual({ ...JOB_DEFAULTS, limits: PROFILES.emulator.limits });
    expect(plan?.valid).toBe(3);
    await handle.terminate('test done');
  });

  it('a misspelt option fails the job at once, naming it', async () => {
    const input = writeChatInput(h.dataDir, 'ui-typo.jsonl', 3);
    const id = `ui-typo-${Date.now()}`;
    temporalStart(id, { input, outDir: 'out-ui-typo', options: { maxAtempts: 3 } });
    const cause = await failureOf(id);
    expect(cause).toContain('maxAtempts');
    expect(cause).toContain('is not a job option');
    // Failed on its first attempt, not retried.
    expect(await planAttempt(id)).toBe(1);
  });

  it('a value out of range fails the job at once, naming the field and the limit', async () => {
    const input = writeChatInput(h.dataDir, 'ui-range.jsonl', 3);
    const id = `ui-range-${Date.now()}`;
    temporalStart(id, { input, outDir: 'out-ui-range', options: { limits: { maxLines: 60_000 } } });
    expect(await failureOf(id)).toContain('options.limits.maxLines: 60000 is above');
    expect(await planAttempt(id)).toBe(1);
  });

  it('an input without its paths fails at once before anything runs', async () => {
    const id = `ui-nopath-${Date.now()}`;
    temporalStart(id, { outDir: 'out-ui-nopath' });
    expect(await failureOf(id)).toContain(`"input" must be a path`);
    expect(await planAttempt(id)).toBe(0);
  });
});
