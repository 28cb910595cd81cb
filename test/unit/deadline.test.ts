// `--deadline`: the switch-time computation, the flag's parsing and validation, the job spec's
// checks, the fingerprint it stays out of, and the summary's cost of the switch.
import { describe, expect, it } from 'vitest';
import { parseCommandArgs, UsageError, type Command } from '../../client/command.ts';
import { runCommand, startCommand } from '../../client/commands/run.ts';
import { jobInputFromFlags } from '../../client/job-options.ts';
import { loadConfig } from '../../common/config.ts';
import {
  CHAT_TIME_FACTOR,
  chatDurationMs,
  chatRate,
  chatShare,
  deadlineInstant,
  deadlineSummary,
  parseDeadline,
  switchLeadMs,
  switchTime,
  type DeadlineState,
} from '../../common/deadline.ts';
import { jobFingerprint } from '../../common/job-record.ts';
import { JobSpecError, resolveJobOptions } from '../../common/job-spec.ts';
import { PROFILES } from '../../common/profiles.ts';
import { remainingLines } from '../../workflows/job-deadline.ts';

const NOW = Date.parse('2026-11-30T12:00:00Z');
const chat = { concurrency: 64, qps: 100 };

describe('switch time', () => {
  it('the chat rate is the smaller of the QPS cap and concurrency over latency', () => {
    expect(chatRate(chat, 30_000)).toBeCloseTo(64 / 30, 9);
    expect(chatRate(chat, 100)).toBe(100);
  });

  it('grows with the remaining lines and shrinks as they finish', () => {
    const base = { chat, latencyMs: 30_000, cancelPollMs: 5000 };
    const at = NOW + 3_600_000;
    const early = switchTime(at, { ...base, remainingLines: 5000 });
    const later = switchTime(at, { ...base, remainingLines: 1000 });
    expect(later).toBeGreaterThan(early);
    // 5000 lines at 64/30 a second: 2344 s, plus the last answer's 30 s, stretched by the factor.
    const chatMs = chatDurationMs(5000, chat, 30_000);
    expect(chatMs).toBe(Math.ceil((5000 / (64 / 30)) * 1000 + 30_000));
    const lead = switchLeadMs({ ...base, remainingLines: 5000 });
    expect(lead).toBeGreaterThan(chatMs * CHAT_TIME_FACTOR + 2 * 5000);
    expect(at - early).toBe(lead);
  });

  it('no lines left means only the cancel and the local steps', () => {
    const lead = switchLeadMs({ remainingLines: 0, chat, latencyMs: 30_000, cancelPollMs: 200 });
    expect(lead).toBeLessThan(5000);
  });

  it('the local steps take as long as the job measured its planning to take', () => {
    const i = { remainingLines: 0, chat, latencyMs: 30_000, cancelPollMs: 200 };
    expect(switchLeadMs({ ...i, localStepMs: 10_000 })).toBe(400 + 4 * 10_000);
    // However fast planning was, the steps after a switch get at least two seconds.
    expect(switchLeadMs({ ...i, localStepMs: 10 })).toBe(400 + 2_000);
  });

  it('a higher QPS or concurrency lets the job wait longer for its batches', () => {
    const i = { remainingLines: 10_000, latencyMs: 10_000, cancelPollMs: 5000 };
    expect(switchTime(NOW, { ...i, chat: { concurrency: 1000, qps: 500 } })).toBeGreaterThan(
      switchTime(NOW, { ...i, chat }),
    );
  });

  it('counts as remaining: pending and running lines, and settled units’ retries', () => {
    const u = (status: string, lines: number, completed: number, retry = 0) =>
      ({
        status,
        lines,
        completed,
        retry,
        round: 1,
        index: 0,
        batchId: null,
        succeeded: 0,
        failed: 0,
      }) as never;
    expect(remainingLines([u('pending', 100, 0), u('in_progress', 100, 40), u('done', 100, 100, 7)])).toBe(
      100 + 60 + 7,
    );
  });

  it('chat units running together share the limits', () => {
    expect(chatShare({ concurrency: 8, qps: 50 }, 2)).toEqual({ concurrency: 4, qps: 25 });
    expect(chatShare({ concurrency: 3, qps: 2 }, 4)).toEqual({ concurrency: 1, qps: 1 });
  });

  it('a duration counts from the job’s start, an instant is itself', () => {
    expect(deadlineInstant({ afterMs: 60_000 }, NOW)).toBe(NOW + 60_000);
    expect(deadlineInstant({ at: '2026-12-01T06:00:00.000Z' }, NOW)).toBe(Date.parse('2026-12-01T06:00:00Z'));
  });
});

describe('parseDeadline', () => {
  it('takes durations and ISO times (UTC without an offset)', () => {
    expect(parseDeadline('90m', NOW)).toEqual({ afterMs: 90 * 60_000 });
    expect(parseDeadline('2026-12-01T06:00:00Z', NOW)).toEqual({ at: '2026-12-01T06:00:00.000Z' });
    expect(parseDeadline('2026-12-01T06:00', NOW)).toEqual({ at: '2026-12-01T06:00:00.000Z' });
    expect(parseDeadline('2026-12-01T08:00:00+02:00', NOW)).toEqual({ at: '2026-12-01T06:00:00.000Z' });
  });

  it('refuses a bad value and a past time with the fix', () => {
    expect(() => parseDeadline('tomorrow', NOW)).toThrow(/neither a duration .* nor an ISO time/);
    expect(() => parseDeadline('2026-11-30T11:00:00Z', NOW)).toThrow(/already past .* give a later time/);
    expect(() => parseDeadline('0s', NOW)).toThrow(/no time at all/);
    expect(() => parseDeadline('2026-13-45T00:00:00Z', NOW)).toThrow(/not a valid time/);
  });
});

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

describe('--deadline on run and start', () => {
  for (const cmd of [runCommand, startCommand]) {
    it(`${cmd.name}: a duration and the chat latency become job options`, () => {
      const job = jobInputFromFlags(
        'in.jsonl',
        'out',
        flagsOf(cmd, ['in.jsonl', '--deadline', '6h', '--chat-latency', '10s', '--chat-qps', '20']),
        config,
      );
      expect(job.options.deadline).toEqual({ afterMs: 6 * 3_600_000 });
      expect(job.options.chatLatencyMs).toBe(10_000);
      expect(job.options.chat).toEqual({ concurrency: 64, qps: 20 });
      expect(job.options.mode).toBe('file');
    });

    it(`${cmd.name}: a bad or past deadline names the flag and the fix`, () => {
      const bad = usageError(() =>
        jobInputFromFlags('in.jsonl', 'out', flagsOf(cmd, ['in.jsonl', '--deadline', 'soon']), config),
      );
      expect(bad).toMatch(/^--deadline: "soon" is neither a duration/);
      const past = usageError(() =>
        jobInputFromFlags(
          'in.jsonl',
          'out',
          flagsOf(cmd, ['in.jsonl', '--deadline', '2020-01-01T00:00:00Z']),
          config,
        ),
      );
      expect(past).toMatch(/^--deadline: 2020-01-01T00:00:00.000Z is already past/);
      const chatMode = usageError(() =>
        jobInputFromFlags(
          'in.jsonl',
          'out',
          flagsOf(cmd, ['in.jsonl', '--deadline', '1h', '--mode', 'chat']),
          config,
        ),
      );
      expect(chatMode).toMatch(/^--deadline: switches batches to Batch Chat: use it with mode file/);
    });
  }

  it('the job spec refuses a malformed deadline typed into the Web UI', () => {
    const e = (() => {
      try {
        resolveJobOptions({ deadline: { in: 5 } }, PROFILES['dashscope-intl'], 'in.jsonl');
      } catch (err) {
        return err as JobSpecError;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(JobSpecError);
    expect(e!.field).toBe('deadline');
    expect(e!.problem).toContain('{"afterMs":7200000}');
  });

  it('stays out of the fingerprint: the same flags again resume the same folder', () => {
    const stat = { size: 10, mtimeMs: 1 };
    const a = jobInputFromFlags(
      'in.jsonl',
      'out',
      flagsOf(runCommand, ['in.jsonl', '--deadline', '2h']),
      config,
    );
    const b = jobInputFromFlags(
      'in.jsonl',
      'out',
      flagsOf(runCommand, ['in.jsonl', '--deadline', '2099-01-01T00:00:00Z']),
      config,
    );
    const none = jobInputFromFlags('in.jsonl', 'out', flagsOf(runCommand, ['in.jsonl']), config);
    expect(jobFingerprint(a, stat)).toEqual(jobFingerprint(none, stat));
    expect(jobFingerprint(b, stat)).toEqual(jobFingerprint(none, stat));
  });
});

describe('deadline summary', () => {
  const state: DeadlineState = {
    at: NOW,
    plannedSwitchAt: NOW - 60_000,
    switchedAt: NOW - 50_000,
    switchRound: 1,
    chatUnits: [1],
    cancelledUnits: [0],
    batchesCancelled: 1,
    viaChat: {
      lines: 100,
      succeeded: 99,
      usageByModel: {
        'qwen-plus': { prompt_tokens: 1_000_000, completion_tokens: 500_000, total_tokens: 1_500_000 },
      },
    },
  };

  it('says which lines went which way and what the switch cost over batches', () => {
    const prices = { currency: 'USD', models: { 'qwen-plus': { input: 0.4, output: 1.2 } } };
    const s = deadlineSummary(state, 1000, prices);
    expect(s.lines).toEqual({ viaBatch: 901, viaChat: 99, sentByChat: 100 });
    expect(s.reason).toBe('batches behind');
    // 1M input at 0.4 + 0.5M output at 1.2 = 1.0 at list price, 0.5 as batches.
    expect(s.cost).toEqual({ currency: 'USD', chat: 1, batch: 0.5, extra: 0.5, unpriced: [] });
    // DashScope bills Batch Chat at the batch price: the prices file says so with syncDiscount.
    expect(deadlineSummary(state, 1000, { ...prices, syncDiscount: 0.5 }).cost!.extra).toBe(0);
  });
});
