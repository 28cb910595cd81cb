#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Entry point of the `batchpilot` command. The package's bin is its build, dist/bin/batchpilot.js
// (`npm run build`); in a clone Node can also run this file directly.
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
