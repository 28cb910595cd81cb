// `batchpilot schedule create|list|describe|trigger|backfill|pause|unpause|delete`: nightly jobs as
// Temporal Schedules. `{date}`/`{datetime}` in the templates are resolved by the job from its
// scheduled time, so backfills read the right day's file.
import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { loadConfig } from '../../common/config.ts';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import { parseDuration } from '../../common/units.ts';
import {
  boolFlag,
  parsedFlag,
  stringFlag,
  UsageError,
  type Command,
  type CommandContext,
  type FlagSchema,
  type ParsedFlags,
} from '../command.ts';
import { JOB_COMMAND_FLAGS, jobInputFromFlags } from '../job-options.ts';
import { encrypts, initialSearchAttributes, searchAttributesRegistered } from '../job-start.ts';
import { connectClient } from '../temporal.ts';

const ACTIONS = ['create', 'list', 'describe', 'trigger', 'backfill', 'pause', 'unpause', 'delete'] as const;
type Action = (typeof ACTIONS)[number];

const OVERLAP = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
} as const;

const CREATE_FLAGS = {
  out: {
    type: 'string',
    description: 'create: output folder template, may use {date} and {datetime}',
    arg: '<outTemplate>',
  },
  cron: { type: 'string', description: 'create: cron expression, e.g. "0 2 * * *"', arg: '<expr>' },
  timezone: {
    type: 'string',
    description: 'create: IANA zone for the cron and for {date}',
    default: 'UTC',
    arg: '<zone>',
  },
  overlap: {
    type: 'string',
    description: 'create: skip | buffer-one | allow-all',
    default: 'skip',
    arg: '<policy>',
  },
  'catchup-window': {
    type: 'string',
    description: 'create: how late a missed run may still start',
    default: '1d',
    arg: '<duration>',
  },
} as const satisfies FlagSchema;

const BACKFILL_FLAGS = {
  from: { type: 'string', description: 'backfill: first scheduled time (ISO 8601)', arg: '<time>' },
  to: { type: 'string', description: 'backfill: last scheduled time (ISO 8601)', arg: '<time>' },
} as const satisfies FlagSchema;

const JSON_FLAG = {
  json: { type: 'boolean', description: 'list/describe: print JSON' },
} as const satisfies FlagSchema;

/** The flags each action takes: one command line parses them all, each action refuses the others. */
const FLAGS_OF: Record<Action, readonly string[]> = {
  create: [...Object.keys(CREATE_FLAGS), ...Object.keys(JOB_COMMAND_FLAGS)],
  list: Object.keys(JSON_FLAG),
  describe: Object.keys(JSON_FLAG),
  trigger: [],
  backfill: Object.keys(BACKFILL_FLAGS),
  pause: [],
  unpause: [],
  delete: [],
};

function refuseOtherFlags(action: Action, flags: ParsedFlags): void {
  const stray = Object.keys(flags).filter(
    (f) => f !== 'help' && flags[f] !== undefined && !FLAGS_OF[action].includes(f),
  );
  if (stray.length > 0)
    throw new UsageError(
      `schedule ${action} does not take ${stray.map((f) => `--${f}`).join(', ')}${
        FLAGS_OF[action].length ? ` (it takes ${FLAGS_OF[action].map((f) => `--${f}`).join(', ')})` : ''
      }`,
    );
}

export const scheduleCommand: Command = {
  name: 'schedule',
  summary: 'run jobs on a schedule (create, list, describe, trigger, backfill, pause, unpause, delete)',
  positionals: ['<action>', '[args...]'],
  flags: { ...CREATE_FLAGS, ...BACKFILL_FLAGS, ...JSON_FLAG, ...JOB_COMMAND_FLAGS },
  details:
    'usage:\n  batchpilot schedule create <scheduleId> <inputTemplate> --out <outTemplate> --cron "<expr>" [job flags]\n  batchpilot schedule list\n  batchpilot schedule describe|trigger|pause|unpause|delete <scheduleId>\n  batchpilot schedule backfill <scheduleId> --from <time> --to <time>',
  async run(ctx) {
    const action = ctx.args[0] as Action;
    if (!ACTIONS.includes(action))
      throw new UsageError(`unknown schedule action "${ctx.args[0]}": use one of ${ACTIONS.join(', ')}`);
    refuseOtherFlags(action, ctx.flags);
    const config = loadConfig(ctx.env);
    const client = await connectClient(config);
    if (action === 'list') return list(client, ctx);
    const id = ctx.args[1];
    if (!id) throw new UsageError(`schedule ${action} needs a <scheduleId>`);
    if (action === 'create') return create(client, ctx, id, config.temporal.taskQueue, config);
    const handle = client.schedule.getHandle(id);
    switch (action) {
      case 'describe': {
        const d = await handle.describe();
        const view = {
          scheduleId: d.scheduleId,
          paused: d.state.paused,
          note: d.state.note,
          spec: d.spec,
          nextActionTimes: d.info.nextActionTimes.map((t) => t.toISOString()),
          recentActions: d.info.recentActions.map((a) => ({
            scheduledAt: a.scheduledAt.toISOString(),
            workflowId: a.action.workflow.workflowId,
          })),
          runningActions: d.info.runningActions.map((a) => a.workflow.workflowId),
        };
        ctx.stdout.write(
          boolFlag(ctx.flags, 'json') ? JSON.stringify(view, null, 2) + '\n' : describeText(view),
        );
        return 0;
      }
      case 'trigger':
        await handle.trigger();
        ctx.stdout.write(`triggered ${id}\n`);
        return 0;
      case 'backfill': {
        const from = parsedFlag(ctx.flags, 'from', parseTime);
        const to = parsedFlag(ctx.flags, 'to', parseTime);
        if (!from || !to) throw new UsageError('schedule backfill needs --from and --to');
        await handle.backfill({ start: from, end: to, overlap: ScheduleOverlapPolicy.ALLOW_ALL });
        ctx.stdout.write(`backfilling ${id} from ${from.toISOString()} to ${to.toISOString()}\n`);
        return 0;
      }
      case 'pause':
        await handle.pause('paused with batchpilot schedule pause');
        ctx.stdout.write(`paused ${id}\n`);
        return 0;
      case 'unpause':
        await handle.unpause('unpaused with batchpilot schedule unpause');
        ctx.stdout.write(`unpaused ${id}\n`);
        return 0;
      case 'delete':
        await handle.delete();
        ctx.stdout.write(`deleted ${id}\n`);
        return 0;
    }
  },
};

function parseTime(s: string): Date {
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`"${s}" is not a time: use ISO 8601, e.g. 2026-11-17T02:00:00Z`);
  return new Date(t);
}

async function create(
  client: Client,
  ctx: CommandContext,
  id: string,
  taskQueue: string,
  config: ReturnType<typeof loadConfig>,
): Promise<number> {
  const inputTemplate = ctx.args[2];
  const out = stringFlag(ctx.flags, 'out');
  const cron = stringFlag(ctx.flags, 'cron');
  if (!inputTemplate || !out || !cron)
    throw new UsageError(
      'schedule create needs <scheduleId> <inputTemplate> --out <outTemplate> --cron "<expr>"',
    );
  const timezone = stringFlag(ctx.flags, 'timezone') ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    throw new UsageError(
      `--timezone: "${timezone}" is not an IANA time zone (e.g. UTC, Europe/Berlin, Asia/Shanghai)`,
    );
  }
  const overlapName = stringFlag(ctx.flags, 'overlap') ?? 'skip';
  const overlap = OVERLAP[overlapName as keyof typeof OVERLAP];
  if (!overlap)
    throw new UsageError(`--overlap: "${overlapName}" is not one of ${Object.keys(OVERLAP).join(', ')}`);
  const catchupWindow = parsedFlag(ctx.flags, 'catchup-window', parseDuration) ?? 86_400_000;
  // Each run carries the search attributes a started job does (the Web UI's "jobs with failures"
  // filter finds scheduled runs too); the input is the template, its day is resolved by the run.
  const searchAttributes = await searchAttributesRegistered(client);
  const job = { ...jobInputFromFlags(inputTemplate, out, ctx.flags, config), timezone, searchAttributes };
  // Every run of a schedule starts later than the last: one fixed instant would soon be past.
  if (job.options.deadline && 'at' in job.options.deadline)
    throw new UsageError(
      "--deadline: a schedule runs again and again, so give a duration counted from each run's start (e.g. 6h), not a fixed time",
    );
  await client.schedule.create({
    scheduleId: id,
    spec: { cronExpressions: [cron], timezone },
    action: {
      type: 'startWorkflow',
      workflowType: JOB_WORKFLOW,
      taskQueue,
      workflowId: id,
      args: [job],
      ...(searchAttributes
        ? { typedSearchAttributes: initialSearchAttributes(inputTemplate, encrypts(client)) }
        : {}),
    },
    policies: { overlap, catchupWindow },
    memo: { input: inputTemplate, outDir: out },
  });
  ctx.stdout.write(
    `created schedule ${id}: "${cron}" (${timezone}), input ${inputTemplate}, output ${out}\n`,
  );
  return 0;
}

async function list(client: Client, ctx: CommandContext): Promise<number> {
  const rows: { scheduleId: string; paused: boolean; next?: string }[] = [];
  for await (const s of client.schedule.list()) {
    rows.push({
      scheduleId: s.scheduleId,
      paused: s.state.paused,
      ...(s.info.nextActionTimes[0] ? { next: s.info.nextActionTimes[0].toISOString() } : {}),
    });
  }
  if (boolFlag(ctx.flags, 'json')) ctx.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else
    for (const r of rows)
      ctx.stdout.write(`${r.scheduleId}\t${r.paused ? 'paused' : 'active'}\tnext ${r.next ?? '-'}\n`);
  return 0;
}

function describeText(v: {
  scheduleId: string;
  paused: boolean;
  nextActionTimes: string[];
  recentActions: { scheduledAt: string; workflowId: string }[];
}): string {
  return [
    `${v.scheduleId} ${v.paused ? '(paused)' : '(active)'}`,
    `  next: ${v.nextActionTimes.slice(0, 3).join(', ') || '-'}`,
    ...v.recentActions.slice(-5).map((a) => `  ran ${a.scheduledAt} → ${a.workflowId}`),
    '',
  ].join('\n');
}
