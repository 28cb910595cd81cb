// `npm run fleet -- [--workers N] [--emulator] [--keep]`: brings the fleet up in the foreground, prints
// how to reach it, and takes everything down on Ctrl-C or SIGTERM. Workers take their provider from
// this shell (BATCHPILOT_PROVIDER, BATCHPILOT_BASE_URL, BATCHPILOT_API_KEY, BATCHPILOT_TASK_QUEUE);
// --emulator runs `batchpilot emulator` and points them at it. S3 credentials come from
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when set, made up otherwise.
import { parseArgs } from 'node:util';
import { DEFAULT_TASK_QUEUE } from '../../common/definitions.ts';
import { startFleet } from './fleet.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '0' },
      emulator: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 0)
    throw new Error(`--workers: "${values.workers}" is not a whole number`);
  const env = process.env;
  const provider = env.BATCHPILOT_PROVIDER ?? (values.emulator ? 'emulator' : undefined);
  if (workers > 0 && !provider)
    throw new Error('workers need a provider: set BATCHPILOT_PROVIDER (and its key), or pass --emulator');
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY }
      : true;
  const fleet = await startFleet({
    workers,
    emulator: values.emulator,
    keep: values.keep,
    objectStore: credentials,
    ...(provider
      ? {
          worker: {
            provider,
            taskQueue: env.BATCHPILOT_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
            ...(env.BATCHPILOT_BASE_URL ? { baseUrl: env.BATCHPILOT_BASE_URL } : {}),
            ...(env.BATCHPILOT_API_KEY ? { apiKey: env.BATCHPILOT_API_KEY } : {}),
          },
        }
      : {}),
  });
  const s3 = fleet.objectStore;
  const lines = [
    `# fleet up in ${Object.values(fleet.timings)
      .reduce((a, b) => a + b, 0)
      .toFixed(1)} s; logs in ${fleet.logDir}`,
    `export TEMPORAL_ADDRESS=${fleet.temporal.address} TEMPORAL_NAMESPACE=${fleet.temporal.namespace}`,
    `export BATCHPILOT_DATA_DIR=${fleet.dataDir}`,
    `# PostgreSQL: psql -h ${fleet.postgres.host} -p ${fleet.postgres.port} -U ${fleet.postgres.user} temporal`,
  ];
  if (s3) {
    lines.push(`export AWS_ENDPOINT_URL=${s3.endpoint} AWS_REGION=${s3.region}`);
    if (credentials === true)
      lines.push(`export AWS_ACCESS_KEY_ID=${s3.accessKeyId} AWS_SECRET_ACCESS_KEY=${s3.secretAccessKey}`);
  }
  if (fleet.emulator) lines.push(`# emulator: ${fleet.emulator.url}`);
  for (const w of fleet.workers) lines.push(`# ${w.name}: pid ${w.child.pid}, metrics ${w.metricsUrl}`);
  lines.push('# Ctrl-C stops everything');
  process.stdout.write(lines.join('\n') + '\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stdout.write('stopping the fleet\n');
  await fleet.stop();
}

main().catch((err: unknown) => {
  process.stderr.write(`fleet: ${(err as Error).message}\n`);
  process.exit(1);
});
