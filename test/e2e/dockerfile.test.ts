// The Dockerfile's steps without Docker (no engine runs here): the build context is assembled the way
// Docker would from .dockerignore, then each stage's WORKDIR, COPY, ENV and RUN lines are carried out
// in a folder of their own (/app mapped into it), read from the Dockerfile itself so that this test
// breaks when the file drifts. RUN lines of the final stage are not run: they prepare the image's own
// root filesystem (the /data volume's owner), which a test must not do to the host. Then the final
// stage's ENTRYPOINT runs `--version` and a worker's help, with the image's ENV.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.join(import.meta.dirname, '..', '..');

interface Step {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  steps: Step[];
}

/** Stages of a Dockerfile: continuation lines joined, comments dropped. */
export function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (!op || args === undefined) throw new Error(`cannot read Dockerfile line: ${line}`);
    if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: m[1]!, name: m[2] ?? String(stages.length), steps: [] });
    } else stages.at(-1)!.steps.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** Whether .dockerignore leaves `rel` (or a folder above it) out of the context. */
function ignored(rel: string, patterns: string[]): boolean {
  const parts = rel.split('/');
  let out = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = negate ? raw.slice(1) : raw;
    for (let i = 1; i <= parts.length; i++)
      if (path.matchesGlob(parts.slice(0, i).join('/'), pattern)) {
        out = !negate;
        break;
      }
  }
  return out;
}

function buildContext(into: string): void {
  const patterns = fs
    .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (ignored(child, patterns)) continue;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) fs.cpSync(path.join(ROOT, child), path.join(into, child));
    }
  };
  walk('');
}

describe('the Dockerfile', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-docker-'));
  const context = path.join(tmp, 'context');
  const stages = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const rootOf = (stage: string) => path.join(tmp, 'stages', stage);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('is multi-stage on Node 24 and runs as a user other than root', () => {
    expect(stages.length).toBeGreaterThan(1);
    for (const s of stages) expect(s.from).toMatch(/^node:24[-.]/);
    const users = stages.at(-1)!.steps.filter((s) => s.op === 'USER');
    expect(users.at(-1)?.args).toBeDefined();
    expect(users.at(-1)!.args).not.toMatch(/^(root|0)(:|$)/);
  });

  it('builds from a context that holds no installed packages, builds, outputs or git', () => {
    buildContext(context);
    const top = fs.readdirSync(context);
    for (const absent of ['node_modules', '.git', 'dist', 'batchpilot-data', 'out', 'test'])
      expect(top).not.toContain(absent);
    expect(top).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'client', 'workflows']));
  });

  it('installs from the lockfile, builds, and the image runs --version and the worker', () => {
    const final = stages.at(-1)!;
    for (const stage of stages) {
      const root = rootOf(stage.name);
      let workdir = root;
      const env: Record<string, string> = {};
      // An absolute path in the image maps into this stage's folder.
      const inStage = (p: string) => (path.isAbsolute(p) ? path.join(root, p) : path.join(workdir, p));
      for (const { op, args } of stage.steps) {
        if (op === 'WORKDIR') fs.mkdirSync((workdir = path.join(root, args)), { recursive: true });
        else if (op === 'ENV') {
          for (const m of args.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
        } else if (op === 'COPY') {
          const words = args.split(/\s+/);
          const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
          const [dest, ...srcs] = words.filter((w) => !w.startsWith('--')).reverse();
          for (const src of srcs.reverse()) {
            const source = from ? path.join(rootOf(from), src) : path.join(context, src);
            expect(fs.existsSync(source), `${op} ${args}: ${src}`).toBe(true);
            const target = inStage(dest!);
            const intoDir = dest!.endsWith('/') || srcs.length > 1;
            // Docker copies a folder's contents, and a file into a folder named with a trailing /.
            fs.cpSync(
              source,
              intoDir && !fs.statSync(source).isDirectory() ? path.join(target, path.basename(src)) : target,
              {
                recursive: true,
                verbatimSymlinks: true,
              },
            );
          }
        } else if (op === 'RUN' && stage !== final) {
          const r = spawnSync('sh', ['-c', args], {
            cwd: workdir,
            env: { ...process.env, ...env },
            encoding: 'utf8',
            timeout: 600_000,
          });
          expect(r.status, `RUN ${args} in stage ${stage.name}:\n${r.stdout}\n${r.stderr}`).toBe(0);
        }
      }
      if (stage !== final) continue;
      const entry = JSON.parse(final.steps.findLast((s) => s.op === 'ENTRYPOINT')!.args) as string[];
      const imageEnv = Object.fromEntries(
        Object.entries(env).map(([k, v]) => [k, v.startsWith('/') ? path.join(root, v) : v]),
      );
      const run = (args: string[]) =>
        execFileSync(entry[0]!, [...entry.slice(1), ...args], {
          cwd: workdir,
          env: { PATH: process.env.PATH, HOME: tmp, ...imageEnv },
          encoding: 'utf8',
        });
      const version = (
        JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
      ).version;
      expect(run(['--version']).trim()).toBe(`batchpilot ${version}`);
      expect(run(['worker', '--help'])).toContain('usage: batchpilot worker');
      // The workflow bundle is prebuilt, and only production packages and JavaScript ship.
      expect(fs.statSync(imageEnv.BATCHPILOT_WORKFLOW_BUNDLE!).size).toBeGreaterThan(100_000);
      expect(fs.existsSync(path.join(workdir, 'node_modules', 'typescript'))).toBe(false);
      expect(fs.existsSync(path.join(workdir, 'node_modules', 'vitest'))).toBe(false);
      expect(fs.existsSync(path.join(workdir, 'node_modules', '@temporalio', 'worker'))).toBe(true);
      expect(fs.readdirSync(workdir).sort()).toEqual(['dist', 'node_modules', 'package.json']);
    }
  }, 900_000);
});
