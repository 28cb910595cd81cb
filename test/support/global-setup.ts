// One Temporal dev server and one workflow bundle per test run, shared by every integration file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDevServer } from '../../worker/dev-server.ts';
import { bundleWorkflows, tracedBundlePath } from '../../worker/workflow-bundle.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startDevServer({
    headless: true,
    // Low enough that tests exercise continue-as-new in shard and job workflows.
    dynamicConfig: ['limit.historyCount.suggestContinueAsNew=60'],
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-bundle-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  // Both, as scripts/bundle-workflows.ts writes them: a worker that traces loads the twin.
  fs.writeFileSync(bundlePath, (await bundleWorkflows()).code);
  fs.writeFileSync(tracedBundlePath(bundlePath), (await bundleWorkflows({ traced: true })).code);
  project.provide('temporalAddress', server.address);
  project.provide('workflowBundlePath', bundlePath);
  return async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
