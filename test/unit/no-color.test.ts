// NO_COLOR (https://no-color.org): the only colour the CLI prints is the pretty log on a terminal,
// and it goes plain when NO_COLOR is set. Runs the real logger in a child process (its transport
// writes to file descriptor 2 from a thread of its own).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const LOGGER = path.join(import.meta.dirname, '..', '..', 'common', 'logger.ts');

function prettyLog(env: Record<string, string | undefined>): string {
  const childEnv = { ...process.env, ...env };
  if (env.NO_COLOR === undefined) delete childEnv.NO_COLOR;
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `import(${JSON.stringify(LOGGER)}).then((m) => m.createLogger({ pretty: true }).info('hello there'))`,
    ],
    { env: childEnv, encoding: 'utf8' },
  );
  expect(r.stderr).toContain('hello there');
  return r.stderr;
}

describe('NO_COLOR', () => {
  it('colours the pretty log by default and not with NO_COLOR set', () => {
    expect(prettyLog({})).toContain('\x1b[');
    expect(prettyLog({ NO_COLOR: '1' })).not.toContain('\x1b[');
  });
});
