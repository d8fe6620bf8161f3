import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { FLAGS, convertFlagValue, type FlagSpec } from './flags.js';
import { RENAMED_KEYS, configSchema, type HoldfastConfig } from './schema.js';

export interface ConfigSources {
  /** Path of a YAML or JSON file. */
  file?: string | undefined;
  /** Flag values as parsed from argv, keyed by flag name without dashes. */
  flags?: Readonly<Record<string, string | string[] | boolean | undefined>>;
  /** Usually process.env; only HOLDFAST_* names are read. */
  env?: Readonly<Record<string, string | undefined>>;
}

type Tree = Record<string, unknown>;

/** defaults < file < environment < flags, all validated by one schema; every bad key is reported at once. */
export function loadConfig(sources: ConfigSources): HoldfastConfig {
  const tree: Tree = sources.file === undefined ? {} : readConfigFile(sources.file);
  // Which flag or variable set each path last (flags win), so a bad value is reported in the words it was typed.
  const origins = new Map<string, { spec: FlagSpec; source: string }>();
  for (const spec of FLAGS) {
    const envValue = sources.env?.[spec.env];
    if (envValue === undefined || envValue === '') continue;
    setPath(tree, spec.path, convertFlagValue(spec.kind, envValue));
    origins.set(spec.path, { spec, source: spec.env });
  }
  for (const spec of FLAGS) {
    const flagValue = sources.flags?.[spec.flag];
    if (flagValue === undefined || (typeof flagValue === 'boolean' && spec.kind !== 'boolean')) continue;
    // A boolean flag is on by its presence (`--h2c`).
    setPath(tree, spec.path, convertFlagValue(spec.kind, typeof flagValue === 'boolean' ? String(flagValue) : flagValue));
    origins.set(spec.path, { spec, source: `--${spec.flag}` });
  }
  try {
    return validateConfig(tree);
  } catch (err) {
    if (!(err instanceof ConfigError) || origins.size === 0) throw err;
    throw new ConfigError(
      err.issues.map((issue) => {
        const origin = origins.get(issue.path) ?? origins.get(issue.path.replace(/\.\d+$/, ''));
        return origin === undefined ? issue : { ...issue, source: origin.source, expected: origin.spec.expects };
      }),
    );
  }
}

export function validateConfig(input: unknown): HoldfastConfig {
  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.flatMap((issue) => describeIssue(input, issue)));
}

function describeIssue(input: unknown, issue: z.core.$ZodIssue): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const path = [...issue.path, key].join('.');
      const successor = RENAMED_KEYS[path];
      return {
        path,
        value: getPath(input, [...issue.path, key]),
        expected: successor ? `renamed: use ${successor}` : 'unknown key',
      };
    });
  }
  return [{ path: issue.path.join('.'), value: getPath(input, issue.path), expected: issue.message }];
}

function readConfigFile(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError([{ path: '(file)', value: path, expected: `a readable config file (${code})` }]);
  }
  let parsed: unknown;
  try {
    parsed = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : 'parse error';
    throw new ConfigError([{ path: '(file)', value: path, expected: `valid YAML or JSON: ${reason}` }]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([{ path: '(file)', value: path, expected: 'a mapping of settings at the top level' }]);
  }
  return parsed as Tree;
}

function getPath(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function setPath(root: Tree, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = root;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]!] = value;
}
