// The local Batch API emulator (docs/emulator.md): DashScope's or OpenAI's Files and Batches
// APIs, Batch Chat and the dry-run test model, over real HTTP, with state that survives a restart
// and seeded faults. It shares no code with the orchestrator's planner or result parsing.
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { EmulatorState } from './context.ts';
import { resolveFaults, type FaultSettings, type ResolvedFaults } from './faults.ts';
import { RateLimiter } from './rate-limits.ts';
import { PROFILE_RULES, type EmulatedProfile, type EmulatorLimits } from './limits.ts';
import { Processor } from './processor.ts';
import { createServer } from './server.ts';
import { Store } from './store.ts';

export type { FaultSettings, HttpFaults, Quirk, ResolvedFaults } from './faults.ts';
export { parseFaultSettings } from './faults.ts';
export type { EmulatedProfile, EmulatorLimits } from './limits.ts';
export type { RouteName } from './routes.ts';
export type { EmulatorStats } from './store.ts';

export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port; default 8787. */
  port?: number;
  dataDir: string;
  /** When set, every other bearer token gets 401, `/_emulator/*` included. */
  apiKey?: string;
  /** Default dashscope. */
  profile?: EmulatedProfile;
  faults?: FaultSettings;
  logger?: Logger;
  /** Replaces some of the profile's limits, e.g. a tiny upload limit in tests. */
  limitsOverride?: Partial<EmulatorLimits>;
}

export interface RunningEmulator {
  /** Base URL for an OpenAI client, e.g. http://127.0.0.1:8787/v1. */
  url: string;
  port: number;
  /** Stops serving and checkpoints every running batch; a new emulator on the same dataDir resumes. */
  close(): Promise<void>;
}

/** Starts an emulator; batches left unfinished in `dataDir` carry on at once. */
export async function startEmulator(opts: EmulatorOptions): Promise<RunningEmulator> {
  const logger = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'emulator' });
  const profile = opts.profile ?? 'dashscope';
  const base = PROFILE_RULES[profile];
  const rules = { ...base, limits: { ...base.limits, ...opts.limitsOverride } };
  const store = new Store(opts.dataDir);
  await store.load();
  const initial = resolveFaults(opts.faults);
  let current: ResolvedFaults = initial;
  const faults = (): ResolvedFaults => current;
  const processor = new Processor({ store, faults, limits: rules.limits, logger });
  const closing = new AbortController();
  const state: EmulatorState = {
    store,
    processor,
    profile,
    rules,
    faults,
    setFaults(settings) {
      current = resolveFaults(settings);
      logger.info({ faults: current }, 'fault settings replaced');
      return current;
    },
    logger,
    rateLimiter: new RateLimiter(),
    signal: closing.signal,
  };
  const server = createServer(state, opts.apiKey);
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8787, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  processor.resumeAll();
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}/v1`;
  logger.info({ url, profile, dataDir: opts.dataDir }, 'emulator listening');
  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closed ??= (async () => {
        closing.abort();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await processor.stop();
        server.closeAllConnections();
        await stopped;
        store.flushRequests();
      })();
      return closed;
    },
  };
}
