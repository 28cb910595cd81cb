// The CLI's flags live in one schema per command: parsing and --help both come from it.
import { parseArgs } from 'node:util';

export interface FlagSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Shown in --help; parsing leaves absent flags undefined so commands can tell "unset". */
  default?: string;
  short?: string;
  multiple?: boolean;
  /** Placeholder in --help, e.g. `<dir>`. */
  arg?: string;
}

export type FlagSchema = Record<string, FlagSpec>;

export type ParsedFlags = Record<string, string | boolean | string[] | undefined>;

export interface CommandContext {
  args: string[];
  flags: ParsedFlags;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Read by `validate -` and `plan -`; process.stdin when absent. */
  stdin?: NodeJS.ReadableStream;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments, e.g. ['<input>']; a trailing `...` takes the rest. */
  positionals: string[];
  flags: FlagSchema;
  /** Extra help text after the flags. */
  details?: string;
  /** Returns the exit code: 0 success, 1 problems found, 2 usage or configuration. */
  run(ctx: CommandContext): Promise<number>;
}

/** A mistake in how the command was called: printed with a hint and exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseCommandArgs(cmd: Command, argv: string[]): { args: string[]; flags: ParsedFlags } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, spec] of Object.entries(cmd.flags)) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nRun "batchpilot ${cmd.name} --help" for the flags.`);
  }
  const required = cmd.positionals.filter((p) => p.startsWith('<') && !p.includes('...'));
  const variadic = cmd.positionals.some((p) => p.includes('...'));
  if (!parsed.values.help) {
    if (parsed.positionals.length < required.length) {
      throw new UsageError(
        `missing ${required.slice(parsed.positionals.length).join(' ')}\nusage: ${usageLine(cmd)}`,
      );
    }
    if (!variadic && parsed.positionals.length > cmd.positionals.length) {
      throw new UsageError(
        `unexpected argument "${parsed.positionals[cmd.positionals.length]}"\nusage: ${usageLine(cmd)}`,
      );
    }
  }
  return { args: parsed.positionals, flags: parsed.values as ParsedFlags };
}

export function usageLine(cmd: Command): string {
  return `batchpilot ${cmd.name} ${cmd.positionals.join(' ')}${Object.keys(cmd.flags).length ? ' [flags]' : ''}`.trim();
}

export function renderHelp(cmd: Command): string {
  const rows = Object.entries(cmd.flags).map(([name, spec]) => {
    const left = `  ${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.type === 'string' ? ` ${spec.arg ?? '<value>'}` : ''}`;
    const def = spec.default !== undefined ? ` (default ${spec.default})` : '';
    return [left, `${spec.description}${def}`] as const;
  });
  rows.push(['  -h, --help', 'show this help']);
  const width = Math.min(38, Math.max(...rows.map(([l]) => l.length)) + 2);
  const flagText = rows.map(([l, r]) =>
    l.length >= width ? `${l}\n${' '.repeat(width)}${r}` : l.padEnd(width) + r,
  );
  return [
    `${cmd.summary}`,
    '',
    `usage: ${usageLine(cmd)}`,
    '',
    'flags:',
    ...flagText,
    ...(cmd.details ? ['', cmd.details] : []),
    '',
  ].join('\n');
}

/** Reads a string flag that the schema declares. */
export function stringFlag(flags: ParsedFlags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function boolFlag(flags: ParsedFlags, name: string): boolean {
  return flags[name] === true;
}

/** Parses a flag with `parse`, turning its error into a usage error that names the flag. */
export function parsedFlag<T>(flags: ParsedFlags, name: string, parse: (s: string) => T): T | undefined {
  const v = stringFlag(flags, name);
  if (v === undefined) return undefined;
  try {
    return parse(v);
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`);
  }
}

export function intFlag(flags: ParsedFlags, name: string): number | undefined {
  return parsedFlag(flags, name, (s) => {
    if (!/^\d+$/.test(s) || Number(s) < 1) throw new Error(`"${s}" is not a positive whole number`);
    return Number(s);
  });
}
