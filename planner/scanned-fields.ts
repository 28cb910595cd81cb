// The fields one scan recorded (scan.ts), read the way the line rules need them: as text, by type
// name for messages, and compared as bytes without decoding.
import { TYPE_NAMES, type Scan } from './scan-result.ts';
import { decodeJsonString } from './scan-values.ts';

/** The recorded fields of the last scan of `u8`, read as the rules need them. */
export class ScannedFields {
  readonly s: Scan;
  private readonly u8: Uint8Array;

  constructor(s: Scan, u8: Uint8Array) {
    this.s = s;
    this.u8 = u8;
  }

  /** The text of string field `f`, escapes decoded. */
  text(f: number): string {
    const s = this.s;
    return s.esc[f]
      ? decodeJsonString(this.u8, s.start[f]!, s.end[f]!)
      : Buffer.from(this.u8.buffer, this.u8.byteOffset + s.start[f]!, s.end[f]! - s.start[f]!).toString(
          'utf8',
        );
  }

  /** What field `f` is, for messages: 'a string', 'a number', ... */
  typeName(f: number): string {
    return TYPE_NAMES[this.s.type[f]!]!;
  }

  /** Whether u8[a, b) holds exactly the bytes of `ref`. */
  sameBytes(a: number, b: number, ref: Uint8Array): boolean {
    if (b - a !== ref.length) return false;
    const u8 = this.u8;
    for (let k = 0; k < ref.length; k++) if (u8[a + k] !== ref[k]) return false;
    return true;
  }

  /** Whether u8[a, b) is all ASCII (so its length in bytes is its length in characters). */
  ascii(a: number, b: number): boolean {
    const u8 = this.u8;
    for (let k = a; k < b; k++) if (u8[k]! >= 0x80) return false;
    return true;
  }
}
