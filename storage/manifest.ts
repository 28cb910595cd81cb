// The manifests: what a round folder holds. Round 1's is the planner's (its shards, with model and
// thinking per shard, the limits and endpoint it planned for); a retry round's lists its packed
// units. Each is written last into its folder, so its presence means the folder is complete, and
// is parsed on read (not cast): a manifest that does not parse fails with the file's name.
// Round 1's manifest is also copied into the outputs as `manifest.json`, for users and scripts.
import fsp from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-file.ts';
import { roundManifestFile } from './layout.ts';

const count = z.number().int().nonnegative();

export const shardEntrySchema = z.object({
  index: count,
  /** Basename, e.g. shard-00000.jsonl; its sidecar is shard-00000.lines. */
  file: z.string(),
  model: z.string(),
  thinking: z.boolean().nullable(),
  lines: count,
  bytes: count,
  /**
   * Estimated input tokens (common/tokens.ts): what admission by enqueued tokens counts. Optional
   * on read: work folders planned before the estimate was recorded lack it.
   */
  inputTokens: count.optional(),
  /** sha256 of the shard file; '' when validating only (no files written). */
  sha256: z.string(),
});
/** A shard as the planner writes it: every field, the token estimate included. */
export type ShardEntry = z.infer<typeof shardEntrySchema> & { inputTokens: number };

export const planManifestSchema = z.object({
  shards: z.array(shardEntrySchema),
  limits: z.object({ maxLines: count, maxBytes: count, maxLineBytes: count }),
  endpoint: z.string(),
  input: z.string(),
});
export type PlanManifest = z.infer<typeof planManifestSchema>;

export const roundManifestSchema = z.object({
  round: z.number().int().min(2),
  units: z.array(
    z.object({
      index: count,
      lines: count,
      bytes: count,
      /** The (model, thinking) group the unit's lines share. */
      group: z.string(),
    }),
  ),
});
export type RoundManifest = z.infer<typeof roundManifestSchema>;

/** Thrown when a manifest is missing its fields or is not JSON: names the file and the fix. */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

/**
 * A work-folder record's text parsed by its schema; one that is not JSON or does not match fails
 * naming the file, what it should be and the fix.
 */
export function parseWorkRecord<T>(schema: z.ZodType<T>, file: string, text: string, what = 'manifest'): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(
      `${file} is not JSON (${(err as Error).message}): the work folder is damaged; start the job afresh with --force`,
    );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new ManifestError(
      `${file} is not a batchpilot ${what} (${issues.slice(0, 3).join('; ')}): the work folder is damaged or from another version; start the job afresh with --force`,
    );
  }
  return parsed.data;
}

function text(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** Writes round 1's manifest into the planner's folder: its commit marker, so durable. */
export function writePlanManifestSync(file: string, manifest: PlanManifest & { shards: ShardEntry[] }): void {
  writeFileAtomicSync(file, text(manifest), 'durable');
}

export async function readPlanManifest(workDir: string): Promise<PlanManifest> {
  const file = roundManifestFile(workDir, 1);
  return parseWorkRecord(planManifestSchema, file, await fsp.readFile(file, 'utf8'));
}

/** Writes a retry round's manifest (into the round's folder while it is being built). */
export async function writeRoundManifest(file: string, manifest: RoundManifest): Promise<void> {
  await writeFileAtomic(file, text(manifest), 'durable');
}

/** A retry round's manifest; undefined when the round has none (it was never completed). */
export async function readRoundManifest(workDir: string, round: number): Promise<RoundManifest | undefined> {
  const file = roundManifestFile(workDir, round);
  const content = await fsp.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  return content === undefined ? undefined : parseWorkRecord(roundManifestSchema, file, content);
}
