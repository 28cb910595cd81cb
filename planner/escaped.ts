// A flag shared by the string skip (simd.ts) and the scanner that reads its answer (scan.ts), in a
// module of its own: the scan threads load their modules as nested data: URLs (pool.ts), where
// each value import embeds the imported module whole, so the scanner imports this, not simd.ts.

/** Bit set in `str`'s answer when the string held escapes; indexes stay below it (memory < 1 GiB). */
export const ESCAPED = 0x40000000;
