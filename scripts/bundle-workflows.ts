// Prebuilds the workflow bundle for production workers (BATCHPILOT_WORKFLOW_BUNDLE=<file>), so a
// worker starts in a second instead of bundling at every start.
import fs from 'node:fs';
import { bundleWorkflows } from '../worker/worker.ts';

const out = process.argv[2] ?? 'workflow-bundle.js';
const bundle = await bundleWorkflows();
fs.writeFileSync(out, bundle.code);
process.stdout.write(`wrote ${out} (${bundle.code.length} bytes)\n`);
