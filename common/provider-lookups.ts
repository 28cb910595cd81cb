// What a provider without list routes means for exactly-once, in the words the log and the summary
// use (docs/provider-capabilities.md).
import type { ProviderLookup } from './job-types.ts';

const LOOKUP_MEANING: Record<ProviderLookup, string> = {
  'GET /files':
    'uploads are not looked up before sending: a retried upload may leave an extra copy of a shard file at the provider (storage only, never a second batch)',
  'GET /batches':
    'creates are not looked up before sending: a create that surely never reached the provider is retried; one whose outcome is unknown stops the shard unless --allow-duplicate-batches',
};

/** `GET /batches is unavailable: …`. */
export function lookupMeaning(lookup: ProviderLookup): string {
  return `${lookup} is unavailable: ${LOOKUP_MEANING[lookup]}`;
}
