// The workflow bundle: webpack's build of workflows/ that every worker loads into its sandbox, with
// or without the OpenTelemetry workflow interceptors.
//
// The interceptors go in only when the worker traces. They wrap workflow calls in spans whose end
// reads the workflow clock; when the worker's cache disposes a workflow while one of those spans is
// still settling, the span's end runs after the workflow's context is gone, throws "Workflow
// uninitialized" from a promise nobody awaits, and the SDK stops the whole worker for an unhandled
// rejection it cannot attribute to a run. A worker with thousands of shards in flight disposes
// workflows all the time; one that does not trace has no reason to carry the risk.
//
// Adding or removing them is replay-safe: they add spans and headers, never commands
// (test/replay replays the recorded histories both ways).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Logger } from 'pino';

// index.ts beside the sources, index.js in a build: the same extension as this file's.
export const WORKFLOWS_PATH = path.join(
  import.meta.dirname,
  '..',
  'workflows',
  `index${path.extname(import.meta.filename)}`,
);

/** The OpenTelemetry interceptors that run inside the workflow sandbox (deterministic: their clock
 * and ids come from the workflow's own, and finished spans leave through a sink). */
export const WORKFLOW_TRACING_INTERCEPTORS = createRequire(import.meta.url).resolve(
  '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors',
);

/** A class name only the tracing interceptors' code carries: how a prebuilt bundle says it traces. */
const TRACING_MARK = 'OpenTelemetryInboundInterceptor';

export interface BundleOptions {
  workflowsPath?: string;
  /** With the OpenTelemetry workflow interceptors (for a worker that exports traces). */
  traced?: boolean;
}

/** Bundles the workflow code (webpack + swc: a few seconds). */
export async function bundleWorkflows(opts: BundleOptions = {}): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: opts.workflowsPath ?? WORKFLOWS_PATH,
    workflowInterceptorModules: opts.traced ? [WORKFLOW_TRACING_INTERCEPTORS] : [],
    logger: quietBundlerLogger,
  });
}

export function bundleIsTraced(code: string): boolean {
  return code.includes(TRACING_MARK);
}

/**
 * Where the traced twin of a prebuilt bundle file lives: `scripts/bundle-workflows.ts` writes both,
 * so a worker switched to tracing by its environment alone finds the one it needs.
 */
export function tracedBundlePath(file: string): string {
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}.traced${ext}`;
}

export type BundleSource = WorkflowBundleWithSourceMap | { code: string } | { codePath: string };

/**
 * The bundle a worker loads: the given one when it matches whether the worker traces, a prebuilt
 * file's traced twin when it traces and the twin exists, else (no bundle given) a fresh build.
 * A mismatch that cannot be fixed here is logged, not fatal: without the interceptors a tracing
 * worker still exports its activity and provider spans; with them an untraced worker drops theirs.
 */
export async function workflowBundleFor(
  given: BundleSource | undefined,
  traced: boolean,
  logger: Logger,
): Promise<BundleSource> {
  if (given === undefined) return bundleWorkflows({ traced });
  if ('codePath' in given) {
    const twin = tracedBundlePath(given.codePath);
    if (traced && fs.existsSync(twin)) return { codePath: twin };
    const code = fs.readFileSync(given.codePath, 'utf8');
    warnOnMismatch(bundleIsTraced(code), traced, given.codePath, logger);
    return { code };
  }
  warnOnMismatch(bundleIsTraced(given.code), traced, 'the given workflow bundle', logger);
  return given;
}

function warnOnMismatch(bundleTraced: boolean, traced: boolean, what: string, logger: Logger): void {
  if (bundleTraced === traced) return;
  if (traced)
    logger.warn(
      { bundle: what },
      'tracing is on but the workflow bundle has no tracing interceptors: workflow spans are not exported; build it with `scripts/bundle-workflows.ts` (it writes a .traced twin)',
    );
  else
    logger.warn(
      { bundle: what },
      'the workflow bundle carries the tracing interceptors but tracing is off: use the bundle built without them',
    );
}

const noop = () => undefined;
const quietBundlerLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };
