// What `validate` and `plan` say about reuse: how many lines a job with the same options would
// answer from stored answers instead of sending. The store and the provider scope are found as the
// worker finds them (with BATCHPILOT_STORAGE=s3://…, the bucket's store, mirrored into
// BATCHPILOT_SCRATCH_DIR as a worker's plan mirrors it; else BATCHPILOT_ANSWERS_DIR, else beside
// BATCHPILOT_DATA_DIR; the provider from --profile or the environment), without loading the whole
// configuration: these commands run without an API key or a server.
import fs from 'node:fs';
import path from 'node:path';
import type { JobOptions } from '../common/job-types.ts';
import { PROFILES, PROFILE_NAMES, type ProfileName } from '../common/profiles.ts';
import { providerScope } from '../common/request-key.ts';
import { ANSWERS_DIR_NAME, type AnswerStore } from '../storage/answers.ts';
import { LocalAnswerStore } from '../storage/local-answers.ts';
import { ReuseSourceError, resolveReuseSource } from '../storage/reuse-source.ts';
import { ReusedLines } from '../storage/reused-lines.ts';
import { bucketAnswerStore } from '../storage/s3-answers.ts';
import { isS3Uri } from '../storage/s3.ts';
import { defaultScratchDir, Stores } from '../storage/workspace.ts';
import { UsageError } from './command.ts';

/** The provider a worker with this environment would use (the same rule as the configuration). */
function providerOf(profileFlag: string | undefined, env: NodeJS.ProcessEnv): ProfileName {
  const named = profileFlag ?? (env.BATCHPILOT_PROVIDER || undefined);
  if (named && (PROFILE_NAMES as readonly string[]).includes(named)) return named as ProfileName;
  const key = env.BATCHPILOT_API_KEY || env.DASHSCOPE_API_KEY || env.OPENAI_API_KEY;
  return key ? 'dashscope-intl' : 'emulator';
}

/** A counting reuse hook (lines still go into shards), or undefined when reuse is off or empty. */
export async function reuseCounter(
  options: JobOptions,
  profileFlag: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<ReusedLines | undefined> {
  if (options.reuse === false || env.BATCHPILOT_ANSWERS_DIR === 'off') return undefined;
  const dataDir = env.BATCHPILOT_DATA_DIR || './batchpilot-data';
  let store: AnswerStore;
  if (env.BATCHPILOT_STORAGE && isS3Uri(env.BATCHPILOT_STORAGE)) {
    store = bucketAnswerStore(env.BATCHPILOT_STORAGE, env.BATCHPILOT_SCRATCH_DIR || defaultScratchDir());
  } else {
    const root = env.BATCHPILOT_ANSWERS_DIR || path.join(dataDir, ANSWERS_DIR_NAME);
    if (!fs.existsSync(root) && options.reuseFrom === undefined) return undefined;
    store = new LocalAnswerStore({ root });
  }
  const profile = providerOf(profileFlag, env);
  const scope = providerScope(profile, env.BATCHPILOT_BASE_URL || PROFILES[profile].baseUrl);
  let fromJob: string | undefined;
  if (options.reuseFrom !== undefined) {
    try {
      fromJob = await resolveReuseSource(options.reuseFrom, dataDir, store, new Stores({ s3: { env } }));
    } catch (err) {
      if (err instanceof ReuseSourceError) throw new UsageError(`--reuse-from: ${err.message}`);
      throw err;
    }
  }
  return new ReusedLines({ store: await store.prepare(fromJob), scope, countOnly: true });
}
