// `batchpilot dev`: a local Temporal dev server with its Web UI, batchpilot's search attributes
// registered, in the foreground until Ctrl-C.
import { startDevServer } from '../../worker/dev-server.ts';
import { intFlag, stringFlag, type Command } from '../command.ts';

export const devCommand: Command = {
  name: 'dev',
  summary: 'run a local Temporal dev server with its Web UI (search attributes registered)',
  positionals: [],
  flags: {
    port: { type: 'string', description: 'gRPC port', default: '7233', arg: '<port>' },
    'ui-port': { type: 'string', description: 'Web UI port', default: '8233', arg: '<port>' },
    'db-filename': {
      type: 'string',
      description: 'persist state in this SQLite file (survives restarts)',
      arg: '<file>',
    },
    'ui-codec-endpoint': {
      type: 'string',
      description: 'codec server the Web UI decodes payloads with (batchpilot codec-server)',
      arg: '<url>',
    },
  },
  async run({ flags, stdout, env }) {
    const port = intFlag(flags, 'port') ?? 7233;
    const uiPort = intFlag(flags, 'ui-port') ?? 8233;
    const db = stringFlag(flags, 'db-filename');
    const codec = stringFlag(flags, 'ui-codec-endpoint');
    const server = await startDevServer({
      port,
      uiPort,
      ...(db ? { dbFilename: db } : {}),
      ...(codec ? { uiCodecEndpoint: codec } : {}),
      env,
    });
    stdout.write(
      `Temporal dev server on ${server.address}, Web UI http://127.0.0.1:${uiPort} (Ctrl-C stops it)\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      server.process.once('exit', stop);
    });
    await server.stop();
    return 0;
  },
};
