// First looks at the input, before any memory is set aside for it: whether it can be read, and
// how many request lines to expect (which sizes the custom_id table once and picks the threads).
import fs from 'node:fs';
import { InputError } from './errors.ts';
import type { InputBytes } from './input-bytes.ts';

const MiB = 1024 * 1024;

/** The input's stat, or an InputError saying why it cannot be planned (missing, a directory). */
export function statInput(file: string): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      code === 'ENOENT'
        ? `input ${file} does not exist`
        : `cannot read input ${file}: ${(err as Error).message}`,
    );
  }
  if (st.isDirectory())
    throw new InputError(`input ${file} is a directory: give the path of a .jsonl or .csv file`);
  return st;
}

/** Request lines to expect, from the line length in the first MiB (sizes the id table once). */
export function estimateLines(bytes: InputBytes): number {
  const size = bytes.size;
  const sample = Buffer.allocUnsafe(Math.min(size, MiB));
  const n = bytes.readOn(sample, 0, sample.length, 0);
  let lines = 0;
  for (let at = sample.indexOf(10); at >= 0 && at < n; at = sample.indexOf(10, at + 1)) lines++;
  return Math.ceil((size / Math.max(1, n)) * Math.max(1, lines));
}
