import { readFileSync } from 'node:fs';

/**
 * How Holdfast's `holdfast` command starts Node, read from the shebang of its main script
 * (`#!/usr/bin/env -S [NAME=value ...] node <flags>`): the environment settings and the Node flags, so a bench
 * runs Holdfast exactly as the installed command does, from whichever build it measures.
 */
export function holdfastLaunch(mainJs) {
  const first = readFileSync(mainJs, 'utf8').split('\n', 1)[0];
  const match = /^#!\/usr\/bin\/env -S (?<rest>.*)$/.exec(first);
  const env = {};
  const nodeArgs = [];
  if (match === null) return { env, nodeArgs };
  const words = match.groups.rest.trim().split(/ +/);
  let i = 0;
  for (; i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]); i++) {
    const at = words[i].indexOf('=');
    env[words[i].slice(0, at)] = words[i].slice(at + 1);
  }
  if (words[i] === 'node') nodeArgs.push(...words.slice(i + 1));
  return { env, nodeArgs };
}

/** The environment a bench gives Holdfast: its own, plus what the shebang sets. */
export function holdfastEnv(mainJs) {
  return { ...process.env, ...holdfastLaunch(mainJs).env };
}

/** The Node flags of the shebang. */
export function holdfastNodeArgs(mainJs) {
  return holdfastLaunch(mainJs).nodeArgs;
}
