// The README's error table is the registry's (src/errors.ts), row for row, so neither drifts: a code added,
// renamed or given another status fails here until the README says the same.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { allErrorDefs, E, errorDefOf, type ErrorDef } from '../../src/errors.js';
import { ROOT } from '../helpers/cli.js';

const BEGIN = '<!-- error-table:begin (test/docs/error-table.test.ts checks it against src/errors.ts) -->';
const END = '<!-- error-table:end -->';

const WHERE = { client: 'client port', control: 'control listener', none: 'not answered' } as const;

function row(def: ErrorDef): string {
  const status = def.httpStatus === null ? '-' : String(def.httpStatus);
  const close = def.wsCloseCode === undefined ? '' : String(def.wsCloseCode);
  return `| \`${def.code}\` | ${status} | ${WHERE[def.listener]} | ${close} | ${def.meaning} |`;
}

/** The table as the registry says it should read. */
function expectedTable(): string {
  return [
    '| code | status | answered on | WebSocket close | meaning |',
    '|---|---|---|---|---|',
    ...allErrorDefs().map(row),
  ].join('\n');
}

test('README: the error table is the registry, row for row', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  assert.ok(start >= 0 && end > start, 'README.md has the error-table markers');
  const table = readme.slice(start + BEGIN.length, end).trim();
  assert.equal(table, expectedTable(), `README.md's error table differs from src/errors.ts; it should read:\n${expectedTable()}\n`);
});

test('error registry: every entry is found by its code, which is HF_ERR_ and its name', () => {
  for (const [name, def] of Object.entries(E)) {
    assert.equal(def.code, `HF_ERR_${name}`);
    assert.equal(errorDefOf(def.code), def);
  }
  assert.equal(errorDefOf('HF_ERR_NOT_A_CODE'), undefined);
  assert.equal(allErrorDefs().length, Object.keys(E).length);
});
