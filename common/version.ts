// batchpilot's version, from its package.json: found by walking up from this file, which sits at
// common/ in a clone and at dist/common/ in a build, the image and an installed package.
import fs from 'node:fs';
import path from 'node:path';

export function batchpilotVersion(from = import.meta.dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'batchpilot' && pkg.version) return pkg.version;
    }
    if (path.dirname(dir) === dir) throw new Error(`no batchpilot package.json above ${from}`);
  }
}
