// A flag shared by the string skip (simd.ts) and the scanner that reads its answer (scan.ts), in a
// module of its own: the scan threads load their modules as nested data: URLs (pool.ts), where
// each value import embeds the imported module whole, so the scanner imports this, not simd.ts.

/** Bit set in `str`'s answer when the string held escapes; indexes stay below it (memory < 1 GiB). */
export const ESCAPED = 0x40000000;

/** The one-letter escapes `\" \\ \/ \b \f \n \r \t`; a `\u` escape takes four hex digits instead. */
export const SIMPLE_ESCAPES = [0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74];

/**
 * Whether `e`, the byte after a `\`, makes a one-letter escape: SIMPLE_ESCAPES spelt out as
 * comparisons, small enough for V8 to inline into the scanner's JS loops (the wasm assembler reads
 * the list itself).
 */
export function isSimpleEscape(e: number | undefined): boolean {
  return (
    e === 0x22 ||
    e === 0x5c ||
    e === 0x2f ||
    e === 0x62 ||
    e === 0x66 ||
    e === 0x6e ||
    e === 0x72 ||
    e === 0x74
  );
}
