// `batchpilot plan <input> --out <dir>`: writes the shard files (with their .lines sidecars),
// manifest.json and rejected.jsonl into <dir>, without any network call.
import path from 'node:path';
import { UsageError, boolFlag, stringFlag, type Command } from '../command.ts';
import { PLAN_FLAGS } from './job-flags.ts';
import { exitCodeOf, inputLabel, planForCommand, renderReport } from './validate.ts';

export const planCommand: Command = {
  name: 'plan',
  summary: 'write the shard files, manifest.json and rejected.jsonl for an input, without sending anything',
  positionals: ['<input>'],
  flags: {
    out: { type: 'string', arg: '<dir>', description: 'output directory (created if missing)' },
    ...PLAN_FLAGS,
    json: { type: 'boolean', description: 'print the plan report (with the shard list) as JSON' },
  },
  details:
    '<input> "-" reads JSONL from stdin.\nExit codes: 0 every line went into a shard, 1 some lines were rejected (see rejected.jsonl) or the\ninput is empty, 2 usage error.',
  async run(ctx) {
    const out = stringFlag(ctx.flags, 'out');
    if (!out)
      throw new UsageError('--out <dir> is required: where the shards, manifest.json and rejected.jsonl go');
    const outDir = path.resolve(out);
    const report = await planForCommand(ctx, { outDir });
    if (boolFlag(ctx.flags, 'json')) {
      ctx.stdout.write(`${JSON.stringify({ outDir, ...report })}\n`);
    } else {
      ctx.stdout.write(renderReport(inputLabel(ctx.args[0]!), report));
      ctx.stdout.write(
        `wrote ${report.shards} shard file${report.shards === 1 ? '' : 's'}, manifest.json and rejected.jsonl (${report.rejected} lines) to ${outDir}\n`,
      );
    }
    return exitCodeOf(report);
  },
};
