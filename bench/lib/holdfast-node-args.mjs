import { readFileSync } from 'node:fs';

/**
 * The Node flags Holdfast's `holdfast` command starts with, read from the shebang of its main script
 * (`#!/usr/bin/env -S node <flags>`), so a bench runs Holdfast exactly as the installed command does, from
 * whichever build it measures.
 */
export function holdfastNodeArgs(mainJs) {
  const first = readFileSync(mainJs, 'utf8').split('\n', 1)[0];
  const match = /^#!\/usr\/bin\/env -S node(?<flags>(?: +-\S+)*) *$/.exec(first);
  return match === null ? [] : match.groups.flags.trim().split(/ +/).filter(Boolean);
}
