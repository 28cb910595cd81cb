// `batchpilot emulator`: the local Batch API emulator in the foreground until SIGINT or SIGTERM.
import fs from 'node:fs';
import path from 'node:path';
import type { LevelWithSilent } from 'pino';
import { createLogger } from '../../common/logger.ts';
import { parseFaultSettings, startEmulator, type FaultSettings } from '../../emulator/index.ts';
import { UsageError, boolFlag, parsedFlag, stringFlag, type Command } from '../command.ts';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65_535) throw new Error(`"${text}" is not a port (0 to 65535)`);
  return Number(text);
}

function readFaults(file: string): FaultSettings {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${file} as JSON: ${(err as Error).message}`);
  }
  return parseFaultSettings(json);
}

/** Serves the Files, Batches and Batch Chat APIs locally, with state that survives a restart. */
export const emulatorCommand: Command = {
  name: 'emulator',
  summary: 'run the local Batch API emulator (Files, Batches, Batch Chat) in the foreground',
  positionals: [],
  flags: {
    port: {
      type: 'string',
      description: 'port to listen on; 0 picks a free one',
      default: '8787',
      arg: '<port>',
    },
    host: { type: 'string', description: 'address to listen on', default: '127.0.0.1', arg: '<host>' },
    'data-dir': {
      type: 'string',
      description: 'where files and batches are kept across restarts',
      default: '$BATCHPILOT_DATA_DIR/emulator, i.e. ./batchpilot-data/emulator',
      arg: '<dir>',
    },
    'api-key': { type: 'string', description: 'accept only this bearer token (default: any)', arg: '<key>' },
    profile: {
      type: 'string',
      description: 'whose limits and list filters to serve: dashscope or openai',
      default: 'dashscope',
      arg: '<name>',
    },
    faults: {
      type: 'string',
      description: 'timing and fault settings (JSON, see details)',
      arg: '<file.json>',
    },
    bare: {
      type: 'boolean',
      description:
        'behave as a bare OpenAI-compatible server: no GET /v1/files or GET /v1/batches (404/405), i.e. the quirk no-list-routes',
    },
  },
  details: [
    'Serves /v1/files, /v1/batches, POST /v1/chat/completions (Batch Chat), /v1/embeddings and /v1/chat/ds-test,',
    'plus GET /_emulator/stats and POST /_emulator/faults. Faults file, every field optional:',
    '  {"seed": 7, "validatingMs": 200, "perLineMs": 2, "finalizingMs": 200,',
    '   "http": {"rate": 0.1, "statuses": [429, 500, 503], "routes": ["create", "retrieve", "upload", "content"]},',
    '   "lineRetryableRate": 0.05, "linePermanentRate": 0.01, "expireRate": 0.2, "expireAfterFraction": 0.5,',
    '   "failBatchRate": 0, "quirks": ["failed-lines-in-output"], "chatDelayMs": 100,',
    '   "enqueuedTokenLimit": {"gpt-4o-mini": 90000}}  (a number limits every model)',
    'Without it: validatingMs 1000, perLineMs 5, finalizingMs 1000 and no faults.',
    'Quirks: failed-lines-in-output, completed-without-output-file, error-code-fields (DashScope style);',
    '  no-list-routes (GET /v1/files answers 404, GET /v1/batches 405, {"detail": …} bodies, as bare servers do);',
    '  batch-error-line (a batch drawn by failBatchRate completes with nothing run and one error line',
    '  {"custom_id":"turn","error":{…}} naming none of its lines). --bare adds no-list-routes.',
  ].join('\n'),
  async run(ctx) {
    const port = parsedFlag(ctx.flags, 'port', parsePort) ?? 8787;
    const profile = stringFlag(ctx.flags, 'profile') ?? 'dashscope';
    if (profile !== 'dashscope' && profile !== 'openai') {
      throw new UsageError(`--profile: "${profile}" is not dashscope or openai`);
    }
    const given = parsedFlag(ctx.flags, 'faults', readFaults);
    const faults = boolFlag(ctx.flags, 'bare')
      ? { ...given, quirks: [...new Set([...(given?.quirks ?? []), 'no-list-routes' as const])] }
      : given;
    const dataDir =
      stringFlag(ctx.flags, 'data-dir') ??
      path.join(ctx.env.BATCHPILOT_DATA_DIR || './batchpilot-data', 'emulator');
    const apiKey = stringFlag(ctx.flags, 'api-key');
    const level = LEVELS.includes(ctx.env.LOG_LEVEL ?? '') ? (ctx.env.LOG_LEVEL as LevelWithSilent) : 'info';
    const logger = createLogger({ level });
    const emu = await startEmulator({
      port,
      host: stringFlag(ctx.flags, 'host') ?? '127.0.0.1',
      dataDir,
      profile,
      logger,
      ...(apiKey ? { apiKey } : {}),
      ...(faults ? { faults } : {}),
    });
    ctx.stdout.write(
      `batchpilot emulator (${profile}) listening on ${emu.url}, data in ${path.resolve(dataDir)}\n`,
    );
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const stop = (s: NodeJS.Signals): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve(s);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    logger.info({ signal }, 'stopping the emulator');
    await emu.close();
    return 0;
  },
};
