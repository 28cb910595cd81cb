// `-` as the input of `validate` and `plan`: standard input, spooled to a temporary file first,
// because the planner takes a file (its threads read it in chunks) and stdin can be read only once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

export const STDIN_ARG = '-';

/** Calls `use` with the input's path: the file named, or a temporary copy of stdin for `-`. */
export async function withInputFile<T>(
  arg: string,
  stdin: NodeJS.ReadableStream,
  use: (file: string) => Promise<T>,
): Promise<T> {
  if (arg !== STDIN_ARG) return use(path.resolve(arg));
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'batchpilot-stdin-'));
  try {
    const file = path.join(dir, 'stdin.jsonl');
    await pipeline(stdin, fs.createWriteStream(file));
    return await use(file);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}
