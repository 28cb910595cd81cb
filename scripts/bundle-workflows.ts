// Prebuilds the workflow bundle for production workers (BATCHPILOT_WORKFLOW_BUNDLE=<file>), so a
// worker starts in a second instead of bundling at every start. Writes two: <file> without the
// tracing interceptors and its `.traced` twin with them; a worker that exports traces loads the twin
// (worker/workflow-bundle.ts).
import fs from 'node:fs';
import { bundleWorkflows, tracedBundlePath } from '../worker/workflow-bundle.ts';

const out = process.argv[2] ?? 'workflow-bundle.js';
for (const [file, traced] of [
  [out, false],
  [tracedBundlePath(out), true],
] as const) {
  const bundle = await bundleWorkflows({ traced });
  fs.writeFileSync(file, bundle.code);
  process.stdout.write(`wrote ${file} (${bundle.code.length} bytes)\n`);
}
