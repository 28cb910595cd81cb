#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Entry point of the `batchpilot` command (Node runs this TypeScript directly).
import { main } from '../client/cli.ts';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`batchpilot: ${String((err as Error)?.stack ?? err)}\n`);
    process.exitCode = 1;
  },
);
