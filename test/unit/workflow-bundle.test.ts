// The workflow bundle carries the OpenTelemetry workflow interceptors only for a worker that traces:
// the prebuild script writes both bundles, and a worker picks the one that matches its tracing.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleIsTraced, tracedBundlePath, workflowBundleFor } from '../../worker/workflow-bundle.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');

/** A logger whose warnings the test reads. */
function recordingLogger(): { logger: pino.Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) },
  );
  return { logger, warnings };
}

describe('workflow bundles with and without the tracing interceptors', () => {
  let dir: string;
  let plain: string;
  let traced: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-bundle-'));
    plain = path.join(dir, 'workflows.js');
    traced = tracedBundlePath(plain);
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'bundle-workflows.ts'), plain], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the prebuild script writes a bundle without them and a .traced twin with them', () => {
    expect(traced).toBe(path.join(dir, 'workflows.traced.js'));
    expect(bundleIsTraced(fs.readFileSync(plain, 'utf8'))).toBe(false);
    expect(bundleIsTraced(fs.readFileSync(traced, 'utf8'))).toBe(true);
  });

  it('a worker that does not trace loads the plain bundle', async () => {
    const { logger, warnings } = recordingLogger();
    const b = await workflowBundleFor({ codePath: plain }, false, logger);
    expect('code' in b && bundleIsTraced(b.code)).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('a worker that traces loads the traced twin of the configured bundle', async () => {
    const { logger, warnings } = recordingLogger();
    const b = await workflowBundleFor({ codePath: plain }, true, logger);
    expect(b).toEqual({ codePath: traced });
    expect(warnings).toEqual([]);
  });

  it('a traced worker given a plain bundle with no twin says its workflow spans are off', async () => {
    const lone = path.join(dir, 'lone.js');
    fs.copyFileSync(plain, lone);
    const { logger, warnings } = recordingLogger();
    const b = await workflowBundleFor({ codePath: lone }, true, logger);
    expect('code' in b && bundleIsTraced(b.code)).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/workflow spans are not exported/);
  });

  it('an untraced worker given a traced bundle says to use the plain one', async () => {
    const { logger, warnings } = recordingLogger();
    await workflowBundleFor({ codePath: traced }, false, logger);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/tracing is off/);
  });
});
