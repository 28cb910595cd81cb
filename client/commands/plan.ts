// `batchpilot plan <input> --out <dir>`: writes the shard files (with their .lines sidecars),
// manifest.json and rejected.jsonl into <dir>, without any network call; with --prices, what the
// plan would cost, and with --deadline the worst case of every line going through Batch Chat.
import path from 'node:path';
import {
  estimateCost,
  parsePriceTable,
  type CostEstimate,
  type PlannedTokens,
  type PriceTable,
} from '../../common/pricing.ts';
import { chatDurationMs, parseDeadline, type DeadlineSpec } from '../../common/deadline.ts';
import { CHAT_DEFAULTS, CHAT_LATENCY_DEFAULT_MS } from '../../common/job-types.ts';
import { estimateTokens } from '../../common/tokens.ts';
import { formatDuration, parseDuration } from '../../common/units.ts';
import type { PlanReport } from '../../planner/index.ts';
import {
  UsageError,
  boolFlag,
  intFlag,
  parsedFlag,
  stringFlag,
  type Command,
  type ParsedFlags,
} from '../command.ts';
import { readPrices } from '../job-options.ts';
import { JOB_FLAGS, PLAN_FLAGS } from './job-flags.ts';
import { exitCodeOf, inputLabel, planForCommand, renderReport } from './validate.ts';

/** Estimated input tokens and lines per model, from the plan's groups. */
export function plannedTokens(groups: PlanReport['groups']): Record<string, PlannedTokens> {
  const byModel: Record<string, PlannedTokens> = {};
  for (const g of groups) {
    const p = (byModel[g.model] ??= { inputTokens: 0, lines: 0 });
    p.inputTokens += estimateTokens(g.bytes);
    p.lines += g.lines;
  }
  return byModel;
}

/** The price table --prices names, or undefined without it; a bad table is a usage error. */
function pricesOf(flags: ParsedFlags): PriceTable | undefined {
  const file = stringFlag(flags, 'prices');
  if (file === undefined) {
    if (stringFlag(flags, 'output-tokens') !== undefined)
      throw new UsageError('--output-tokens prices the answers: give --prices <prices.json> with it');
    return undefined;
  }
  try {
    return parsePriceTable(readPrices(file));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--prices ${file}: ${(err as Error).message}`);
  }
}

/** Cents for sums of a unit or more; small sums to six places, trailing zeros dropped. */
const money = (n: number): string => (n >= 1 ? n.toFixed(2) : n.toFixed(6).replace(/\.?0+$/, ''));

/** The estimate as people read it: per model at the batch price and the synchronous worst case. */
export function renderCost(e: CostEstimate): string {
  const { batch, synchronous: sync } = e;
  const what =
    e.outputTokensPerLine > 0
      ? `input tokens and ${e.outputTokensPerLine} output tokens a line`
      : 'input tokens only; answers are billed as output on top, --output-tokens <n> assumes a length';
  const out = [`estimated cost in ${batch.currency}, ${what}:`];
  for (const model of Object.keys(batch.byModel))
    out.push(
      `  ${model}: ${money(batch.byModel[model]!)} at the batch price, ${money(sync.byModel[model]!)} if sent synchronously`,
    );
  out.push(`  total: ${money(batch.total)} at the batch price, ${money(sync.total)} if sent synchronously`);
  if (batch.unpriced.length > 0)
    out.push(`  not priced (add them to the prices file): ${batch.unpriced.join(', ')}`);
  return out.join('\n') + '\n';
}

/** `--deadline` and the Batch Chat limits its fallback would send at, as plan reads them. */
function deadlineOf(flags: ParsedFlags) {
  const spec = parsedFlag(flags, 'deadline', (t) => parseDeadline(t, Date.now()));
  if (!spec) return undefined;
  return {
    spec,
    chat: {
      concurrency: intFlag(flags, 'chat-concurrency') ?? CHAT_DEFAULTS.concurrency,
      qps: intFlag(flags, 'chat-qps') ?? CHAT_DEFAULTS.qps,
    },
    latencyMs: parsedFlag(flags, 'chat-latency', parseDuration) ?? CHAT_LATENCY_DEFAULT_MS,
  };
}

/** The worst case of a deadline: every valid line sent by Batch Chat, how long it takes and costs. */
export interface WorstCase {
  deadline: DeadlineSpec;
  lines: number;
  chat: { concurrency: number; qps: number };
  latencyMs: number;
  /** Time to answer every line through Batch Chat at those limits. */
  chatMs: number;
  /** The synchronous cost (the prices file's syncDiscount, else the list price), with --prices. */
  cost?: { currency: string; total: number; overBatch: number };
}

function worstCase(
  d: NonNullable<ReturnType<typeof deadlineOf>>,
  lines: number,
  cost: CostEstimate | undefined,
): WorstCase {
  return {
    deadline: d.spec,
    lines,
    chat: d.chat,
    latencyMs: d.latencyMs,
    chatMs: chatDurationMs(lines, d.chat, d.latencyMs),
    ...(cost
      ? {
          cost: {
            currency: cost.synchronous.currency,
            total: cost.synchronous.total,
            overBatch: Math.round((cost.synchronous.total - cost.batch.total) * 1e6) / 1e6,
          },
        }
      : {}),
  };
}

export function renderWorstCase(w: WorstCase): string {
  const when = 'at' in w.deadline ? w.deadline.at : `${formatDuration(w.deadline.afterMs)} after the start`;
  const out = [
    `with --deadline ${when}, the worst case sends all ${w.lines} lines through Batch Chat:`,
    `  about ${formatDuration(w.chatMs)} at ${w.chat.concurrency} at once, ${w.chat.qps} a second, ${formatDuration(w.latencyMs)} a request`,
  ];
  if (w.cost)
    out.push(
      `  cost ${money(w.cost.total)} ${w.cost.currency} if sent synchronously, ${money(w.cost.overBatch)} more than as batches`,
    );
  return out.join('\n') + '\n';
}

export const planCommand: Command = {
  name: 'plan',
  summary: 'write the shard files, manifest.json and rejected.jsonl for an input, without sending anything',
  positionals: ['<input>'],
  flags: {
    out: { type: 'string', arg: '<dir>', description: 'output directory (created if missing)' },
    ...PLAN_FLAGS,
    prices: {
      type: 'string',
      arg: '<prices.json>',
      description:
        'price table JSON ({"currency","batchDiscount","models":{"<model>":{"input","output"}}}, per million tokens): print the estimated cost per model at the batch price and if sent synchronously',
    },
    'output-tokens': {
      type: 'string',
      arg: '<n>',
      description: 'with --prices: output tokens to assume per line (default: price the input only)',
    },
    deadline: {
      type: 'string',
      arg: '<ISO time|duration>',
      description:
        'print the worst case of run --deadline: every line through Batch Chat (its time, and with --prices its cost)',
    },
    'chat-concurrency': JOB_FLAGS['chat-concurrency']!,
    'chat-qps': JOB_FLAGS['chat-qps']!,
    'chat-latency': JOB_FLAGS['chat-latency']!,
    json: { type: 'boolean', description: 'print the plan report (with the shard list) as JSON' },
  },
  details:
    '<input> "-" reads JSONL from stdin.\nExit codes: 0 every line went into a shard, 1 some lines were rejected (see rejected.jsonl) or the\ninput is empty, 2 usage error.',
  async run(ctx) {
    const out = stringFlag(ctx.flags, 'out');
    if (!out)
      throw new UsageError('--out <dir> is required: where the shards, manifest.json and rejected.jsonl go');
    // The prices are checked before planning, so a typo in them costs no shard writing.
    const prices = pricesOf(ctx.flags);
    const outputTokens = intFlag(ctx.flags, 'output-tokens') ?? 0;
    const deadline = deadlineOf(ctx.flags);
    const outDir = path.resolve(out);
    const report = await planForCommand(ctx, { outDir });
    const cost = prices ? estimateCost(plannedTokens(report.groups), prices, outputTokens) : undefined;
    const worst = deadline ? worstCase(deadline, report.valid, cost) : undefined;
    if (boolFlag(ctx.flags, 'json')) {
      ctx.stdout.write(
        `${JSON.stringify({ outDir, ...report, ...(cost ? { estimatedCost: cost } : {}), ...(worst ? { deadline: worst } : {}) })}\n`,
      );
    } else {
      ctx.stdout.write(renderReport(inputLabel(ctx.args[0]!), report));
      if (cost) ctx.stdout.write(renderCost(cost));
      if (worst) ctx.stdout.write(renderWorstCase(worst));
      ctx.stdout.write(
        `wrote ${report.shards} shard file${report.shards === 1 ? '' : 's'}, manifest.json and rejected.jsonl (${report.rejected} lines) to ${outDir}\n`,
      );
    }
    return exitCodeOf(report);
  },
};
