// `--deadline`: when a job must stop waiting for its batches and send what is left through the
// synchronous Batch Chat API so that every line is answered in time. Pure: the job workflow plans
// its switch with it, the CLI parses the flag with it, `plan` prints the worst case with it.
import { costOf, type PriceTable, type Usage } from './pricing.ts';
import { parseDuration } from './units.ts';

/** A deadline as a job carries it: an instant, or a duration counted from the job's start. */
export type DeadlineSpec = { at: string } | { afterMs: number };

/** What the time left must cover once the job switches to Batch Chat. */
export interface SwitchInputs {
  /** Lines not answered yet (sent by chat if the job switches now). */
  remainingLines: number;
  /** Batch Chat limits the job sends at: requests waiting at once, started per second. */
  chat: { concurrency: number; qps: number };
  /** How long one Batch Chat request takes to be answered (assumed). */
  latencyMs: number;
  /** How often a cancelling batch is read until it has settled. */
  cancelPollMs: number;
  /**
   * How long one of the job's local steps took here (measured: its start and planning), which the
   * collect, retry packing and merge after a switch each take about as long on the same workers.
   */
  localStepMs?: number;
}

/**
 * The chat estimate is an upper bound on the rate (no 429s, no retries, no slow answers): what it
 * says is stretched by this factor, so a job that meets the bound has a quarter of it to spare.
 */
export const CHAT_TIME_FACTOR = 1.25;

/** The least time the local steps after a switch are given, however fast planning was. */
const STEP_OVERHEAD_MS = 2_000;

/** Local steps between the switch and the end: collect the cancelled batches, pack, collect, merge. */
const LOCAL_STEPS = 4;

/** Lines a second Batch Chat answers at these limits: min(qps, concurrency / latency). */
export function chatRate(chat: SwitchInputs['chat'], latencyMs: number): number {
  return Math.min(chat.qps, (chat.concurrency * 1000) / Math.max(1, latencyMs));
}

/** How long Batch Chat takes to answer `lines` lines: the rate's time plus the last answer's wait. */
export function chatDurationMs(lines: number, chat: SwitchInputs['chat'], latencyMs: number): number {
  if (lines <= 0) return 0;
  return Math.ceil((lines / chatRate(chat, latencyMs)) * 1000 + latencyMs);
}

/**
 * The time the job needs from the switch to its end: cancelling the running batches (a cancel call
 * and two reads while each settles), the remaining lines through Batch Chat, and the local steps
 * (collect, pack, collect, merge), each as long as the job's own planning step took.
 */
export function switchLeadMs(i: SwitchInputs): number {
  const chat = chatDurationMs(i.remainingLines, i.chat, i.latencyMs) * CHAT_TIME_FACTOR;
  const cancel = 2 * i.cancelPollMs;
  const local = Math.max(STEP_OVERHEAD_MS, LOCAL_STEPS * (i.localStepMs ?? 0));
  return Math.ceil(chat + cancel + local);
}

/** The latest instant (epoch ms) at which switching still meets `deadlineAt`. */
export function switchTime(deadlineAt: number, i: SwitchInputs): number {
  return deadlineAt - switchLeadMs(i);
}

/** The deadline's instant (epoch ms) for a job that started at `startedAt` (epoch ms). */
export function deadlineInstant(spec: DeadlineSpec, startedAt: number): number {
  return 'at' in spec ? Date.parse(spec.at) : startedAt + spec.afterMs;
}

/** Batch Chat limits per unit when `units` chat units run at once: their sum stays within `chat`. */
export function chatShare(chat: SwitchInputs['chat'], units: number): SwitchInputs['chat'] {
  const n = Math.max(1, units);
  return { concurrency: Math.max(1, Math.floor(chat.concurrency / n)), qps: Math.max(1, chat.qps / n) };
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Parses `--deadline`: a duration (`90m`, `6h`) counted from the job's start, or an ISO 8601 time
 * (`2026-12-01T06:00:00Z`; without an offset it is UTC) that must be later than `now`.
 */
export function parseDeadline(text: string, now: number): DeadlineSpec {
  const t = text.trim();
  if (/^\d/.test(t) && !t.includes('-')) {
    const ms = parseDuration(t);
    if (ms <= 0) throw new Error(`"${text}" is no time at all: give a duration such as 2h, or an ISO time`);
    return { afterMs: ms };
  }
  if (!ISO_TIME.test(t))
    throw new Error(
      `"${text}" is neither a duration (90m, 6h) nor an ISO time (2026-12-01T06:00:00Z): use one of those`,
    );
  const utc = /T/.test(t) && !/(Z|[+-]\d{2}:?\d{2})$/.test(t) ? `${t}Z` : t;
  const at = Date.parse(utc);
  if (!Number.isFinite(at)) throw new Error(`"${text}" is not a valid time: use e.g. 2026-12-01T06:00:00Z`);
  if (at <= now)
    throw new Error(
      `${new Date(at).toISOString()} is already past (now ${new Date(now).toISOString()}): give a later time, or a duration such as 2h`,
    );
  return { at: new Date(at).toISOString() };
}

/** What the job carries across continue-as-new about its deadline (epoch ms throughout). */
export interface DeadlineState {
  at: number;
  /** The latest switch that still meets the deadline, as last computed. */
  plannedSwitchAt: number;
  /** How long the job took from its start to the end of planning (one local step, measured). */
  localStepMs?: number;
  switchedAt?: number;
  /** The round in which the job switched; every later round goes by Batch Chat. */
  switchRound?: number;
  /** The deadline was too close when the job began: nothing was sent as a batch. */
  atStart?: boolean;
  /** Units of the switch round started by Batch Chat (after the switch). */
  chatUnits: number[];
  /** Units of the switch round whose batches the switch cancelled. */
  cancelledUnits: number[];
  /** Batches the switch cancelled that were still running. */
  batchesCancelled: number;
  /** Lines sent by Batch Chat, those answered, and their usage by model. */
  viaChat: { lines: number; succeeded: number; usageByModel: Record<string, Usage> };
}

/** The deadline as `status` and the progress query show it (ISO times). */
export interface DeadlineView {
  at: string;
  plannedSwitchAt: string;
  switchedAt: string | null;
  reason?: 'too close at start' | 'batches behind';
  linesViaChat: number;
}

/** The deadline section of summary.json. */
export interface DeadlineSummary extends DeadlineView {
  lines: { viaBatch: number; viaChat: number; sentByChat: number };
  batchesCancelled: number;
  /** What the lines sent by Batch Chat cost there, and what the same usage costs as batches. */
  cost?: { currency: string; chat: number; batch: number; extra: number; unpriced: string[] };
}

export function deadlineView(d: DeadlineState): DeadlineView {
  const iso = (t: number) => new Date(t).toISOString();
  return {
    at: iso(d.at),
    plannedSwitchAt: iso(d.plannedSwitchAt),
    switchedAt: d.switchedAt !== undefined ? iso(d.switchedAt) : null,
    ...(d.switchedAt !== undefined ? { reason: d.atStart ? 'too close at start' : 'batches behind' } : {}),
    linesViaChat: d.viaChat.succeeded,
  };
}

/** summary.json's deadline section: lines by the way they went, and the switch's cost. */
export function deadlineSummary(d: DeadlineState, succeeded: number, prices?: PriceTable): DeadlineSummary {
  const chat = d.viaChat;
  const summary: DeadlineSummary = {
    ...deadlineView(d),
    lines: { viaBatch: succeeded - chat.succeeded, viaChat: chat.succeeded, sentByChat: chat.lines },
    batchesCancelled: d.batchesCancelled,
  };
  if (prices) {
    const asChat = costOf(chat.usageByModel, { ...prices, batchDiscount: prices.syncDiscount ?? 1 });
    const asBatch = costOf(chat.usageByModel, prices);
    const extra = Math.round((asChat.total - asBatch.total) * 1e6) / 1e6;
    summary.cost = {
      currency: prices.currency,
      chat: asChat.total,
      batch: asBatch.total,
      extra,
      unpriced: asChat.unpriced,
    };
  }
  return summary;
}
