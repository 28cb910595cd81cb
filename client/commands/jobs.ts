// `status`, `watch`, `cancel` and `results`: reading and steering a job by its workflow id.
import fs from 'node:fs';
import { loadConfig } from '../../common/config.ts';
import { resolveInDataRoot } from '../../common/paths.ts';
import { boolFlag, stringFlag, UsageError, type Command } from '../command.ts';
import { jobOutcome, noWorkerNote, queryProgress, watchJob } from '../job-handle.ts';
import { exitCodeOf, renderAlerts, renderProgress, renderSummary } from '../progress-view.ts';
import { connectClient } from '../temporal.ts';
import { writeResultsCsv } from '../results-csv.ts';
import { JOB_OUTPUTS, outputFile } from '../../storage/layout.ts';
import { isS3Uri, resolveLocation } from '../../storage/location.ts';
import { Stores } from '../../storage/workspace.ts';
import { outputsOf, writeStoredResultsCsv } from '../job-store.ts';

export const statusCommand: Command = {
  name: 'status',
  summary: 'one-shot progress of a job',
  positionals: ['<workflowId>'],
  flags: { json: { type: 'boolean', description: 'print the progress object as JSON' } },
  async run({ args, flags, stdout, env }) {
    const client = await connectClient(loadConfig(env));
    const handle = client.workflow.getHandle(args[0]!);
    const outcome = await jobOutcome(handle);
    if (outcome.status !== 'RUNNING') {
      if (boolFlag(flags, 'json'))
        stdout.write(
          JSON.stringify(
            { status: outcome.status, summary: outcome.summary, error: outcome.error },
            null,
            2,
          ) + '\n',
        );
      else
        stdout.write(
          (outcome.summary
            ? renderSummary(outcome.summary)
            : `job ${args[0]} ${outcome.status.toLowerCase()}: ${outcome.error ?? ''}`) + '\n',
        );
      return exitCodeOf(outcome.summary);
    }
    const note = await noWorkerNote(client, handle);
    if (note) {
      stdout.write(
        boolFlag(flags, 'json')
          ? JSON.stringify({ status: 'RUNNING', workerPolling: false, note }, null, 2) + '\n'
          : `${note}\n`,
      );
      return 1;
    }
    const p = await queryProgress(handle);
    stdout.write(
      boolFlag(flags, 'json')
        ? JSON.stringify({ ...p, alerts: renderAlerts(p) }, null, 2) + '\n'
        : [renderProgress(p), ...renderAlerts(p)].join('\n') + '\n',
    );
    return 0;
  },
};

export const watchCommand: Command = {
  name: 'watch',
  summary: 'live progress bar until the job ends',
  positionals: ['<workflowId>'],
  flags: {},
  async run({ args, stdout, env }) {
    const client = await connectClient(loadConfig(env));
    return watchJob(client, args[0]!, stdout);
  },
};

export const cancelCommand: Command = {
  name: 'cancel',
  summary: 'cancel a job: provider batches are cancelled, partial results kept',
  positionals: ['<workflowId>'],
  flags: { 'no-wait': { type: 'boolean', description: 'return once the cancel is requested' } },
  async run({ args, flags, stdout, env }) {
    const client = await connectClient(loadConfig(env));
    const handle = client.workflow.getHandle(args[0]!);
    await handle.cancel();
    stdout.write(`cancel requested for ${args[0]}\n`);
    if (boolFlag(flags, 'no-wait')) return 0;
    return watchJob(client, args[0]!, stdout).then(() => 0);
  },
};

export const resultsCommand: Command = {
  name: 'results',
  summary: 'print where the outputs of a job are',
  positionals: ['<workflowId>'],
  flags: {
    format: {
      type: 'string',
      description: 'csv also writes results.csv (custom_id,status_code,content,usage)',
      arg: '<csv>',
    },
  },
  async run({ args, flags, stdout, env }) {
    const config = loadConfig(env);
    const format = stringFlag(flags, 'format');
    if (format !== undefined && format !== 'csv')
      throw new UsageError(`--format: "${format}" is not supported; use csv`);
    const client = await connectClient(config);
    const outcome = await jobOutcome(client.workflow.getHandle(args[0]!));
    if (!outcome.summary) {
      stdout.write(
        `job ${args[0]} has no outputs yet (${outcome.status.toLowerCase()}${outcome.error ? `: ${outcome.error}` : ''})\n`,
      );
      return 1;
    }
    const where = resolveLocation(outcome.summary.outDir, config.storage, config.dataDir);
    if (isS3Uri(where)) {
      const stores = new Stores();
      try {
        const store = stores.forOut(where);
        for (const at of await outputsOf(store)) stdout.write(`${at}\n`);
        const csv = format === 'csv' ? await writeStoredResultsCsv(store) : undefined;
        if (csv) stdout.write(`${csv.at} (${csv.rows} rows)\n`);
      } finally {
        stores.close();
      }
      return 0;
    }
    const outDir = resolveInDataRoot(config.dataDir, outcome.summary.outDir);
    for (const name of JOB_OUTPUTS) {
      const file = outputFile(outDir, name);
      if (fs.existsSync(file)) stdout.write(`${file}\n`);
    }
    if (format === 'csv') {
      const csv = outputFile(outDir, 'resultsCsv');
      const rows = await writeResultsCsv(outputFile(outDir, 'results'), csv);
      stdout.write(`${csv} (${rows} rows)\n`);
    }
    return 0;
  },
};
