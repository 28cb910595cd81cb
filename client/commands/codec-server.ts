// `batchpilot codec-server`: decrypts batchpilot's payloads for the Temporal Web UI and the
// `temporal` CLI, with BATCHPILOT_CODEC_KEY, in the foreground until SIGINT or SIGTERM.
import { AesGcmCodec } from '../../common/codec.ts';
import { ConfigError, loadConfig } from '../../common/config.ts';
import { createLogger } from '../../common/logger.ts';
import { startCodecServer } from '../codec-server.ts';
import { parsedFlag, stringFlag, type Command } from '../command.ts';

function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65_535) throw new Error(`"${text}" is not a port (0 to 65535)`);
  return Number(text);
}

export const codecServerCommand: Command = {
  name: 'codec-server',
  summary: 'serve /encode and /decode so the Web UI and temporal CLI show encrypted payloads',
  positionals: [],
  flags: {
    port: {
      type: 'string',
      description: 'port to listen on; 0 picks a free one',
      default: '8888',
      arg: '<port>',
    },
    host: { type: 'string', description: 'address to listen on', default: '127.0.0.1', arg: '<host>' },
    'cors-origin': {
      type: 'string',
      multiple: true,
      description:
        "browser origin allowed to call, e.g. the Web UI's http://localhost:8233 (repeatable; * for any)",
      arg: '<origin>',
    },
  },
  details: [
    'Needs BATCHPILOT_CODEC_KEY (the key the workers and clients use). With BATCHPILOT_CODEC_AUTH set, every',
    'request must carry exactly that Authorization header (temporal CLI: --codec-auth "<value>").',
    'Point the tools at it:',
    '  temporal workflow show -w <id> --codec-endpoint http://127.0.0.1:8888',
    '  batchpilot dev --ui-codec-endpoint http://127.0.0.1:8888   (a deployed Web UI: its codec endpoint setting)',
  ].join('\n'),
  async run(ctx) {
    const config = loadConfig(ctx.env);
    if (!config.codecKey)
      throw new ConfigError(
        'invalid configuration:\n  BATCHPILOT_CODEC_KEY: required by codec-server (the key the workers encrypt with)',
      );
    const logger = createLogger({ level: config.logLevel });
    const corsFlag = ctx.flags['cors-origin'];
    const server = await startCodecServer({
      codec: new AesGcmCodec(config.codecKey),
      port: parsedFlag(ctx.flags, 'port', parsePort) ?? 8888,
      host: stringFlag(ctx.flags, 'host') ?? '127.0.0.1',
      corsOrigins: Array.isArray(corsFlag) ? corsFlag : [],
      ...(config.codecAuth ? { authorization: config.codecAuth } : {}),
      logger,
    });
    ctx.stdout.write(`batchpilot codec server on ${server.url} (POST /encode, POST /decode)\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    return 0;
  },
};
