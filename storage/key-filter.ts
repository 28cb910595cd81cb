// A Bloom filter of request keys: lets the planner answer "not stored" for most lines without a
// system call. It never answers "not stored" for a key that was added (no false negatives); it
// answers "maybe" for a fraction of the keys never added (false positives), which then cost the
// lookup on disk they would have cost without it. Its size is set by a memory bound, not by how many
// keys there are: more keys than the bound holds raise the false-positive rate toward 1, which
// degrades lookups to what they were without a filter, never to a wrong answer.
//
// The k probe positions come from two 32-bit hashes of the key's 16 bytes by double hashing
// (h1 + i*h2). Keys are SHA-256 output, but the mixing costs little and keeps the filter sound for
// keys that are not uniform (tests, hand-made stores).

/** Bits a key gets when the bound allows: ~0.05% false positives with the best probe count. */
const BITS_PER_KEY = 16;
const MIN_BITS = 1 << 10;
/** Largest filter: 2^32 bits (512 MiB); probe positions are 32-bit. */
const MAX_BITS = 2 ** 32;
const MAX_PROBES = 16;

/** A filter's bits in shared memory and its shape: what another thread needs to ask it. */
export interface SharedKeyFilter {
  buffer: SharedArrayBuffer;
  bits: number;
  probes: number;
  sizedFor: number;
}

export class KeyFilter {
  readonly bits: number;
  readonly probes: number;
  /** Keys the filter was sized for. */
  readonly sizedFor: number;
  private readonly u8: Uint8Array;
  private readonly mask: number;
  private h1 = 0;
  private h2 = 0;

  /**
   * A filter for about `keys` keys within `maxBytes` of memory: 16 bits a key when that fits, else
   * the bound (a power of two of bits in either case).
   */
  constructor(keys: number, maxBytes: number, shared?: SharedKeyFilter) {
    if (shared) {
      this.bits = shared.bits;
      this.mask = shared.bits - 1;
      this.probes = shared.probes;
      this.sizedFor = shared.sizedFor;
      this.u8 = new Uint8Array(shared.buffer);
      return;
    }
    const want = Math.max(MIN_BITS, keys * BITS_PER_KEY);
    const cap = Math.min(MAX_BITS, Math.max(8, maxBytes * 8));
    let bits = MIN_BITS;
    while (bits < want && bits * 2 <= cap) bits *= 2;
    while (bits > cap) bits /= 2;
    this.bits = bits;
    this.mask = bits - 1;
    this.sizedFor = keys;
    this.probes = Math.min(MAX_PROBES, Math.max(1, Math.round((bits / Math.max(1, keys)) * Math.LN2)));
    // Shared memory: the planner's scan threads ask the same filter, not copies of it.
    this.u8 = new Uint8Array(new SharedArrayBuffer(Math.max(1, bits / 8)));
  }

  /** The filter another thread built and shared (shared()). */
  static fromShared(shared: SharedKeyFilter): KeyFilter {
    return new KeyFilter(0, 0, shared);
  }

  /** This filter's memory and shape, to hand to another thread (no copy). */
  shared(): SharedKeyFilter {
    return {
      buffer: this.u8.buffer as SharedArrayBuffer,
      bits: this.bits,
      probes: this.probes,
      sizedFor: this.sizedFor,
    };
  }

  /** Bytes of memory the filter holds. */
  get bytes(): number {
    return this.u8.byteLength;
  }

  /** The two hashes of key[at, at + KEY_BYTES) the probe positions come from, into h1 and h2. */
  private hash(key: Uint8Array, at: number): void {
    const w0 = word(key, at);
    const w1 = word(key, at + 4);
    const w2 = word(key, at + 8);
    const w3 = word(key, at + 12);
    this.h1 = fmix32(w0 ^ fmix32(w1 ^ fmix32(w2 ^ fmix32(w3))));
    this.h2 = fmix32(w3 ^ fmix32(w2 ^ fmix32(w1 ^ fmix32(w0 ^ 0x9e3779b9)))) | 1;
  }

  /** Adds key[at, at + KEY_BYTES). */
  add(key: Uint8Array, at = 0): void {
    this.hash(key, at);
    const h1 = this.h1;
    const h2 = this.h2;
    const u8 = this.u8;
    for (let i = 0; i < this.probes; i++) {
      const b = ((h1 + Math.imul(i, h2)) & this.mask) >>> 0;
      u8[b >>> 3]! |= 1 << (b & 7);
    }
  }

  /** False when key[at, at + KEY_BYTES) was surely never added; true when it may have been. */
  mayHold(key: Uint8Array, at = 0): boolean {
    this.hash(key, at);
    const h1 = this.h1;
    const h2 = this.h2;
    const u8 = this.u8;
    for (let i = 0; i < this.probes; i++) {
      const b = ((h1 + Math.imul(i, h2)) & this.mask) >>> 0;
      if ((u8[b >>> 3]! & (1 << (b & 7))) === 0) return false;
    }
    return true;
  }

  /** The expected false-positive rate with `keys` keys added: (1 - e^(-k n / m))^k. */
  falsePositiveRate(keys = this.sizedFor): number {
    return (1 - Math.exp((-this.probes * keys) / this.bits)) ** this.probes;
  }
}

/** MurmurHash3's 32-bit finaliser: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function word(u8: Uint8Array, at: number): number {
  return u8[at]! | (u8[at + 1]! << 8) | (u8[at + 2]! << 16) | (u8[at + 3]! << 24);
}
