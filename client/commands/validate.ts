// `batchpilot validate <input>`: reads the input without any network call and reports every problem
// with its line number, the groups (model, thinking) and how many shards it would make.
import { estimateTokens } from '../../common/tokens.ts';
import { formatBytes } from '../../common/units.ts';
import { InputError, planInput, type PlanOptions, type PlanReport } from '../../planner/index.ts';
import { UsageError, boolFlag, intFlag, stringFlag, type Command, type CommandContext } from '../command.ts';
import { STDIN_ARG, withInputFile } from '../stdin-input.ts';
import { planOptionsOf } from '../../common/job-spec.ts';
import { reuseCounter } from '../reuse-count.ts';
import { PLAN_FLAGS, jobOptionsFromFlags, profileFromFlags } from './job-flags.ts';

/** Input tokens before anything is sent, by model, from the bytes of each group's valid lines. */
export function estimateInputTokens(groups: PlanReport['groups']): {
  total: number;
  byModel: Record<string, number>;
} {
  const byModel: Record<string, number> = {};
  let total = 0;
  for (const g of groups) {
    const tokens = estimateTokens(g.bytes);
    byModel[g.model] = (byModel[g.model] ?? 0) + tokens;
    total += tokens;
  }
  return { total, byModel };
}

/** Problems printed before "and N more" (the rest: --json, or rejected.jsonl from `plan`). */
const SHOWN = 50;

const num = (n: number): string => n.toLocaleString('en-US');

/** Runs the planner for a command: input errors are usage errors (exit 2); progress on a TTY. */
export async function planForCommand(
  ctx: CommandContext,
  extra: Pick<PlanOptions, 'outDir' | 'maxProblems'>,
): Promise<PlanReport> {
  return withInputFile(ctx.args[0]!, ctx.stdin ?? process.stdin, (input) => planFile(ctx, input, extra));
}

/** How the report names the input: its path as given, or "stdin" for `-`. */
export const inputLabel = (arg: string): string => (arg === STDIN_ARG ? 'stdin' : arg);

async function planFile(
  ctx: CommandContext,
  input: string,
  extra: Pick<PlanOptions, 'outDir' | 'maxProblems'>,
): Promise<PlanReport> {
  const options = jobOptionsFromFlags(input, ctx.flags, profileFromFlags(ctx.flags, ctx.env));
  const opts = planOptionsOf(input, options);
  const reuse = await reuseCounter(options, stringFlag(ctx.flags, 'profile'), ctx.env);
  const tty = (ctx.stderr as { isTTY?: boolean }).isTTY === true;
  try {
    const report = await planInput({
      ...opts,
      ...extra,
      ...(reuse ? { reuse } : {}),
      ...(tty
        ? {
            onProgress: (p: { bytesRead: number; linesRead: number }) =>
              ctx.stderr.write(`\r${num(p.linesRead)} lines, ${formatBytes(p.bytesRead)} read   `),
          }
        : {}),
    });
    if (tty) ctx.stderr.write('\r\x1b[K');
    return report;
  } catch (err) {
    if (err instanceof InputError) throw new UsageError(err.message);
    throw err;
  }
}

/** Exit code for a report: 1 when any line is refused or there is nothing to send. */
export const exitCodeOf = (r: PlanReport): number => (r.rejected > 0 || r.lines === 0 ? 1 : 0);

/** The report as people read it: totals, problems (capped), warnings, groups and shards. */
export function renderReport(input: string, r: PlanReport): string {
  const out: string[] = [];
  out.push(`${input}: ${num(r.lines)} request lines, ${num(r.valid)} valid, ${num(r.rejected)} rejected`);
  if (r.problems.length > 0) {
    out.push('', 'problems:');
    for (const p of r.problems.slice(0, SHOWN)) out.push(`  line ${p.line}: [${p.code}] ${p.message}`);
    const more = Math.max(r.rejected, r.problems.length) - Math.min(SHOWN, r.problems.length);
    if (more > 0)
      out.push(`  ... and ${num(more)} more (all of them: --json, or rejected.jsonl from "batchpilot plan")`);
  }
  if (r.warnings.length > 0) {
    out.push('', 'warnings:');
    for (const w of r.warnings) out.push(`  line ${w.line}: [${w.code}] ${w.message}`);
  }
  if (r.groups.length > 0) {
    out.push('', 'groups (one model and thinking mode per shard):');
    for (const g of r.groups) {
      const thinking = g.thinking === null ? 'thinking unset' : g.thinking ? 'thinking on' : 'thinking off';
      out.push(
        `  ${g.model}, ${thinking}: ${num(g.lines)} line${g.lines === 1 ? '' : 's'}, ${formatBytes(g.bytes)}`,
      );
    }
  }
  out.push('', `shards: ${num(r.shards)}`);
  if (r.reused)
    out.push(
      `reused: ${num(r.reused.lines)} line${r.reused.lines === 1 ? '' : 's'} would be answered from earlier jobs' stored answers instead of sent (--no-reuse sends them)`,
    );
  const tokens = estimateInputTokens(r.groups);
  if (tokens.total > 0)
    out.push(`estimated input tokens: about ${num(tokens.total)} (characters / 4, an upper bound)`);
  return out.join('\n') + '\n';
}

export const validateCommand: Command = {
  name: 'validate',
  summary: 'check an input without sending anything: every problem with its line number',
  positionals: ['<input>'],
  flags: {
    ...PLAN_FLAGS,
    json: {
      type: 'boolean',
      description: 'print {lines, valid, rejected, groups, shards, problems, warnings} as JSON',
    },
    'max-problems': {
      type: 'string',
      arg: '<n>',
      description: 'problems listed in the report (the counts are always complete)',
      default: '1000',
    },
  },
  details:
    '<input> "-" reads JSONL from stdin.\nExit codes: 0 every line is valid, 1 some lines would be rejected (or the input is empty), 2 usage\nerror (bad flag, missing or unreadable input, CSV without its columns).',
  async run(ctx) {
    const report = await planForCommand(ctx, { maxProblems: intFlag(ctx.flags, 'max-problems') ?? 1000 });
    if (boolFlag(ctx.flags, 'json')) {
      const { lines, valid, rejected, groups, shards, problems, warnings, reused } = report;
      const estimatedInputTokens = estimateInputTokens(groups);
      ctx.stdout.write(
        `${JSON.stringify({ lines, valid, rejected, groups, shards, problems, warnings, estimatedInputTokens, ...(reused ? { reused } : {}) })}\n`,
      );
    } else {
      ctx.stdout.write(renderReport(inputLabel(ctx.args[0]!), report));
    }
    return exitCodeOf(report);
  },
};
