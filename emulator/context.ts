// What every route handler gets: the store, the batch processor, the profile's rules and the
// fault settings in force right now.
import type { IncomingMessage } from 'node:http';
import type { RateLimiter } from './rate-limits.ts';
import type { Logger } from 'pino';
import type { FaultSettings, ResolvedFaults } from './faults.ts';
import type { Reply } from './http.ts';
import type { EmulatedProfile, ProfileRules } from './limits.ts';
import type { Processor } from './processor.ts';
import type { Store } from './store.ts';

export interface EmulatorState {
  store: Store;
  processor: Processor;
  profile: EmulatedProfile;
  rules: ProfileRules;
  faults(): ResolvedFaults;
  /** Replaces the fault settings until the emulator stops (POST /_emulator/faults). */
  setFaults(settings: FaultSettings): ResolvedFaults;
  logger: Logger;
  /** Token buckets of the `rateLimits` setting, one per route. */
  rateLimiter: RateLimiter;
  /** Aborted when the emulator closes: long waits (Batch Chat) end with it. */
  signal: AbortSignal;
}

export interface RequestContext {
  req: IncomingMessage;
  url: URL;
  /** Path parameters captured by the route, decoded. */
  params: string[];
  state: EmulatorState;
}

export type Handler = (ctx: RequestContext) => Reply | Promise<Reply>;
