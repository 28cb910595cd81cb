// The two hashes of a custom_id the planner keeps instead of the id: computed by the scan threads
// from the id's bytes (line.ts) and by the main thread from a decoded id (rows and lines refused
// before scanning); both must agree for the same id.

/** FNV-1a over the id's UTF-8 bytes with murmur3's finalizer: the top bits index the id table. */
export function hashBytes(u8: Uint8Array, start: number, end: number, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = start; i < end; i++) h = Math.imul(h ^ u8[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The second, independent hash (a different FNV seed): its bits are the table's fingerprint. */
export const SEED2 = 0x2545f491;

export function hashString(id: string, seed?: number): number {
  const b = Buffer.from(id, 'utf8');
  return hashBytes(b, 0, b.length, seed);
}
