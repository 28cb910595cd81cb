// A folder or file that cannot be written, for root too (the tests run as root here): how a test
// breaks the disk under a job to see it fail clearly instead of killing its worker.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Unwritable {
  how: string;
  restore(): void;
}

/** True when nothing can be created in the folder, or appended to the file (checked by trying). */
function refusesWrites(target: string): boolean {
  try {
    if (fs.statSync(target).isDirectory()) {
      const probe = path.join(target, `.probe-${process.pid}`);
      fs.writeFileSync(probe, 'x');
      fs.rmSync(probe, { force: true });
    } else {
      fs.closeSync(fs.openSync(target, 'a'));
    }
    return false;
  } catch {
    return true;
  }
}

/**
 * Makes a folder refuse new entries, renames and removals, or a file refuse writes, for root too.
 * Root ignores permission bits (CAP_DAC_OVERRIDE): chmod changes nothing for it. So, in order:
 *  1. the immutable attribute (`chattr +i`, ext4/xfs/btrfs/tmpfs, CAP_LINUX_IMMUTABLE): binds root
 *     as well; creating `results.jsonl.tmp-…` in the folder fails with EPERM, while its
 *     subfolders (the work dir `.batchpilot/`) stay writable, so the merge fails exactly where it
 *     first writes into the output folder;
 *  2. a read-only bind mount of the target onto itself (CAP_SYS_ADMIN): EROFS, subfolders too;
 *  3. for a non-root user, chmod 0555 (a folder) or 0444 (a file): EACCES.
 * Each is checked by trying to write; `restore()` undoes it.
 */
export function makeUnwritable(target: string): Unwritable {
  const isDir = fs.statSync(target).isDirectory();
  const mode = fs.statSync(target).mode & 0o777;
  const attempts: { how: string; apply: () => void; restore: () => void }[] = [
    {
      how: `chattr +i (immutable ${isDir ? 'folder' : 'file'})`,
      apply: () => execFileSync('chattr', ['+i', target], { stdio: 'pipe' }),
      restore: () => execFileSync('chattr', ['-i', target], { stdio: 'pipe' }),
    },
    {
      how: 'read-only bind mount',
      apply: () => {
        execFileSync('mount', ['--bind', target, target], { stdio: 'pipe' });
        execFileSync('mount', ['-o', 'remount,bind,ro', target], { stdio: 'pipe' });
      },
      restore: () => execFileSync('umount', [target], { stdio: 'pipe' }),
    },
    {
      how: `chmod ${isDir ? '0555' : '0444'}`,
      apply: () => fs.chmodSync(target, isDir ? 0o555 : 0o444),
      restore: () => fs.chmodSync(target, mode),
    },
  ];
  const tried: string[] = [];
  for (const a of attempts) {
    try {
      a.apply();
    } catch (err) {
      tried.push(`${a.how}: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    if (refusesWrites(target)) return { how: a.how, restore: a.restore };
    tried.push(`${a.how}: writes still succeed`);
    try {
      a.restore();
    } catch {
      // It did nothing; nothing to undo.
    }
  }
  throw new Error(`cannot make ${target} unwritable here (${tried.join('; ')})`);
}
