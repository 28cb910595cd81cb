// The one schema of a job: what every command and the plan activity accept, complete and refuse.
// The flag cases go through the commands' own flag schemas (parseCommandArgs), as the CLI does.
import { describe, expect, it } from 'vitest';
import { parseCommandArgs, UsageError, type Command } from '../../client/command.ts';
import { runCommand, startCommand } from '../../client/commands/run.ts';
import { scheduleCommand } from '../../client/commands/schedule.ts';
import { planCommand } from '../../client/commands/plan.ts';
import { validateCommand } from '../../client/commands/validate.ts';
import { planOptionsFromFlags } from '../../client/commands/job-flags.ts';
import { jobInputFromFlags } from '../../client/job-options.ts';
import { loadConfig } from '../../common/config.ts';
import { JobSpecError, planOptionsOf, resolveJobOptions } from '../../common/job-spec.ts';
import { CHAT_DEFAULTS, JOB_DEFAULTS } from '../../common/job-types.ts';
import { DRY_RUN, PROFILES } from '../../common/profiles.ts';

const dashscope = PROFILES['dashscope-intl'];

function specError(fn: () => unknown): JobSpecError {
  try {
    fn();
  } catch (err) {
    if (err instanceof JobSpecError) return err;
    throw err;
  }
  throw new Error('expected a JobSpecError');
}

describe('resolveJobOptions', () => {
  it('completes an empty job with the defaults and the profile limits', () => {
    expect(resolveJobOptions({}, dashscope, 'in.jsonl')).toEqual({
      ...JOB_DEFAULTS,
      limits: dashscope.limits,
    });
    expect(resolveJobOptions(undefined, PROFILES.openai, 'in.jsonl').limits).toEqual(PROFILES.openai.limits);
  });

  it('refuses a limit above the profile, except on custom', () => {
    const e = specError(() => resolveJobOptions({ limits: { maxLines: 60_000 } }, dashscope, 'in.jsonl'));
    expect(e.field).toBe('limits.maxLines');
    expect(e.problem).toContain('above dashscope-intl');
    expect(e.problem).toContain('50000');
    expect(
      resolveJobOptions({ limits: { maxLines: 60_000 } }, PROFILES.custom, 'in.jsonl').limits.maxLines,
    ).toBe(60_000);
    // Lower is always fine, and the rest stay the profile's.
    expect(resolveJobOptions({ limits: { maxBytes: 1000 } }, dashscope, 'in.jsonl').limits).toEqual({
      ...dashscope.limits,
      maxBytes: 1000,
    });
    expect(
      specError(() => resolveJobOptions({ limits: { maxBytes: 300_000_000 } }, PROFILES.openai, 'in.jsonl'))
        .field,
    ).toBe('limits.maxBytes');
  });

  it('caps the limits at the test model for a dry run', () => {
    const o = resolveJobOptions({ dryRun: true }, dashscope, 'in.jsonl');
    expect(o.limits).toEqual(DRY_RUN.limits);
    expect(planOptionsOf('/abs/in.jsonl', o).rewrite).toEqual({
      model: DRY_RUN.model,
      url: DRY_RUN.endpoint,
    });
  });

  it('names the field of every wrong value', () => {
    const cases: [unknown, string][] = [
      [{ maxAtempts: 3 }, 'maxAtempts'],
      [{ limits: { maxLine: 3 } }, 'limits.maxLine'],
      [{ maxAttempts: 0 }, 'maxAttempts'],
      [{ maxAttempts: '3' }, 'maxAttempts'],
      [{ endpoint: '/v1/foo' }, 'endpoint'],
      [{ completionWindow: '2w' }, 'completionWindow'],
      [{ completionWindow: '400h' }, 'completionWindow'],
      [{ mode: 'stream' }, 'mode'],
      [{ name: 'x'.repeat(101) }, 'name'],
      [{ description: 'x'.repeat(201) }, 'description'],
      [{ mode: 'chat', chat: { qps: 1001 } }, 'chat.qps'],
      [{ mode: 'chat', endpoint: '/v1/embeddings' }, 'mode'],
      [{ dryRun: true, endpoint: '/v1/embeddings' }, 'dryRun'],
      [{ thinking: 'maybe' }, 'thinking'],
      [{ prices: { currency: 'USD' } }, 'prices'],
    ];
    for (const [raw, field] of cases)
      expect(specError(() => resolveJobOptions(raw, dashscope, 'in.jsonl')).field, JSON.stringify(raw)).toBe(
        field,
      );
    expect(
      specError(() => resolveJobOptions({ limits: { maxLine: 3 } }, dashscope, 'in.jsonl')).message,
    ).toBe('limits.maxLine: is not a job option (limits takes: maxLines, maxBytes, maxLineBytes)');
    expect(specError(() => resolveJobOptions({ maxAttempts: 1.5 }, dashscope, 'in.jsonl')).message).toBe(
      'maxAttempts: must be a positive whole number of attempts',
    );
    expect(specError(() => resolveJobOptions({ endpoint: '/v1/foo' }, dashscope, 'in.jsonl')).message).toBe(
      'endpoint: "/v1/foo" is not one of /v1/chat/completions, /v1/embeddings, /v1/chat/ds-test',
    );
  });

  it('gives chat mode its defaults', () => {
    expect(resolveJobOptions({ mode: 'chat' }, dashscope, 'in.jsonl').chat).toEqual(CHAT_DEFAULTS);
  });

  it('CSV: columns default by name with a header and by position without one', () => {
    expect(resolveJobOptions({ csv: { model: 'qwen-plus' } }, dashscope, 'x.csv').csv).toEqual({
      idColumn: 'custom_id',
      promptColumn: 'prompt',
      model: 'qwen-plus',
    });
    expect(resolveJobOptions({ csv: { model: 'qwen-plus', header: false } }, dashscope, 'x.csv').csv).toEqual(
      { header: false, idColumn: '1', promptColumn: '2', model: 'qwen-plus' },
    );
    expect(
      specError(() =>
        resolveJobOptions({ csv: { model: 'q', header: false, idColumn: 'id' } }, dashscope, 'x.csv'),
      ).field,
    ).toBe('csv.idColumn');
    expect(specError(() => resolveJobOptions({}, dashscope, 'x.csv')).field).toBe('csv.model');
    expect(specError(() => resolveJobOptions({ csv: { model: 'q' } }, dashscope, 'x.jsonl')).field).toBe(
      'csv',
    );
  });
});

/** Parses argv with the command's own flag schema, as the CLI does. */
const flagsOf = (cmd: Command, argv: string[]) => parseCommandArgs(cmd, argv).flags;

const config = loadConfig({ BATCHPILOT_PROVIDER: 'dashscope-intl', BATCHPILOT_API_KEY: 'sk-test' });

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error('expected a UsageError');
}

describe('job flags, the same for every command', () => {
  it('run and start take a CSV with only --model, as validate does (the help shows the column defaults)', () => {
    for (const cmd of [runCommand, startCommand]) {
      const job = jobInputFromFlags('x.csv', 'out', flagsOf(cmd, ['x.csv', '--model', 'qwen-plus']), config);
      expect(job.options.csv).toEqual({ idColumn: 'custom_id', promptColumn: 'prompt', model: 'qwen-plus' });
    }
    const planned = planOptionsFromFlags(
      '/d/x.csv',
      flagsOf(validateCommand, ['x.csv', '--model', 'qwen-plus']),
      dashscope,
    );
    expect(planned.csv).toEqual({ idColumn: 'custom_id', promptColumn: 'prompt', model: 'qwen-plus' });
  });

  it('run and start check --endpoint as validate and plan do', () => {
    for (const cmd of [runCommand, startCommand])
      expect(
        usageError(() =>
          jobInputFromFlags('in.jsonl', 'out', flagsOf(cmd, ['in.jsonl', '--endpoint', '/v1/foo']), config),
        ),
      ).toMatch(/^--endpoint: "\/v1\/foo" is not one of/);
    for (const cmd of [validateCommand, planCommand])
      expect(
        usageError(() =>
          planOptionsFromFlags('/d/in.jsonl', flagsOf(cmd, ['in.jsonl', '--endpoint', '/v1/foo']), dashscope),
        ),
      ).toMatch(/^--endpoint: "\/v1\/foo" is not one of/);
  });

  it('refuses provider limits above the profile as flags, naming the flag; custom may raise them', () => {
    expect(
      usageError(() =>
        jobInputFromFlags(
          'in.jsonl',
          'out',
          flagsOf(runCommand, ['in.jsonl', '--max-lines', '60000']),
          config,
        ),
      ),
    ).toMatch(/^--max-lines: 60000 is above dashscope-intl's limit of 50000/);
    expect(
      usageError(() =>
        planOptionsFromFlags(
          '/d/in.jsonl',
          flagsOf(validateCommand, ['in.jsonl', '--max-bytes', '600MB']),
          dashscope,
        ),
      ),
    ).toMatch(/^--max-bytes: 600000000 is above/);
    const custom = loadConfig({
      BATCHPILOT_PROVIDER: 'custom',
      BATCHPILOT_BASE_URL: 'http://127.0.0.1:1/v1',
      BATCHPILOT_API_KEY: 'sk-test',
    });
    expect(
      jobInputFromFlags('in.jsonl', 'out', flagsOf(runCommand, ['in.jsonl', '--max-lines', '60000']), custom)
        .options.limits.maxLines,
    ).toBe(60_000);
  });

  it('--max-enqueued-tokens on run, start and schedule create; else the profile says, else no limit', () => {
    for (const cmd of [runCommand, startCommand, scheduleCommand]) {
      const argv = cmd === scheduleCommand ? ['create', 'id', 'in.jsonl'] : ['in.jsonl'];
      const flags = flagsOf(cmd, [...argv, '--max-enqueued-tokens', '90000']);
      expect(jobInputFromFlags('in.jsonl', 'out', flags, config).options.maxEnqueuedTokens).toBe(90_000);
    }
    expect(
      jobInputFromFlags('in.jsonl', 'out', flagsOf(runCommand, ['in.jsonl']), config).options,
    ).not.toHaveProperty('maxEnqueuedTokens');
    const tiered = { ...PROFILES.openai, maxEnqueuedTokens: 2_000_000 };
    expect(resolveJobOptions({}, tiered, 'in.jsonl').maxEnqueuedTokens).toBe(2_000_000);
    expect(resolveJobOptions({ maxEnqueuedTokens: 500 }, tiered, 'in.jsonl').maxEnqueuedTokens).toBe(500);
    expect(
      usageError(() =>
        jobInputFromFlags(
          'in.jsonl',
          'out',
          flagsOf(runCommand, ['in.jsonl', '--max-enqueued-tokens', '0']),
          config,
        ),
      ),
    ).toMatch(/^--max-enqueued-tokens: /);
    expect(
      specError(() => resolveJobOptions({ maxEnqueuedTokens: 1.5 }, dashscope, 'in.jsonl')).problem,
    ).toBe('must be a positive whole number of tokens');
  });

  it("--no-header reads 1-based positions, defaulting to the providers' layout", () => {
    const flags = flagsOf(runCommand, [
      'x.csv',
      '--model',
      'q',
      '--no-header',
      '--id-column',
      '1',
      '--prompt-column',
      '2',
    ]);
    expect(jobInputFromFlags('x.csv', 'out', flags, config).options.csv).toEqual({
      header: false,
      idColumn: '1',
      promptColumn: '2',
      model: 'q',
    });
    expect(
      usageError(() =>
        jobInputFromFlags(
          'x.csv',
          'out',
          flagsOf(runCommand, ['x.csv', '--model', 'q', '--no-header', '--prompt-column', 'text']),
          config,
        ),
      ),
    ).toBe('--prompt-column: "text" must be a column position (1, 2, …) when the CSV has no header');
    expect(
      usageError(() =>
        jobInputFromFlags('in.jsonl', 'out', flagsOf(runCommand, ['in.jsonl', '--no-header']), config),
      ),
    ).toBe('--no-header converts CSV input (a .csv file); in.jsonl is JSONL');
  });

  it('schedule list takes no job flags', async () => {
    const ctx = {
      args: ['list'],
      flags: flagsOf(scheduleCommand, ['list', '--max-lines', '3', '--chat-qps', '5']),
      stdout: process.stdout,
      stderr: process.stderr,
      env: {},
    };
    await expect(scheduleCommand.run(ctx)).rejects.toThrow(
      'schedule list does not take --max-lines, --chat-qps (it takes --json)',
    );
    const backfill = {
      ...ctx,
      args: ['backfill', 'nightly'],
      flags: flagsOf(scheduleCommand, ['backfill', 'nightly', '--model', 'q']),
    };
    await expect(scheduleCommand.run(backfill)).rejects.toThrow('schedule backfill does not take --model');
  });
});
