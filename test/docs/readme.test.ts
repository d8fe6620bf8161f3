// The README and the examples' READMEs say only what is true: their runnable shell blocks run against a real
// Holdfast and print what their comments say, the JS shown is the examples' code, the configuration
// reference is the schema's, and every HOLDFAST_* variable Holdfast reads is documented.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { FLAGS } from '../../src/config/flags.js';
import { validateConfig } from '../../src/config/load.js';
import { compressionSchema, configSchema, groupSchema, healthCheckSchema, passiveSchema } from '../../src/config/schema.js';
import { ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/listen.js';
import { docBlocks, isVerbatimExcerpt, type DocBlock } from './doc-blocks.js';
import { ShellSession } from './shell-session.js';

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'examples')).map((name) => `examples/${name}/README.md`)];
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const readme = read('README.md');

/** Runnable blocks grouped into shell sessions: `run session=NAME` blocks share one, in order. */
const sessions = new Map<string, { doc: string; blocks: DocBlock[] }>();
for (const doc of DOCS) {
  for (const block of docBlocks(read(doc))) {
    const run = block.marker === undefined ? null : /^run(?:\s+session=(\S+))?$/.exec(block.marker);
    if (run === null) continue;
    const key = `${doc}: ${run[1] ?? `line ${block.line}`}`;
    const session = sessions.get(key) ?? { doc, blocks: [] };
    session.blocks.push(block);
    sessions.set(key, session);
  }
}

test('README: the quick tour and every example README have blocks the test runs', () => {
  for (const doc of DOCS) {
    assert.ok([...sessions.values()].some((s) => s.doc === doc), `${doc} has no <!-- test: run --> block`);
  }
  assert.ok(sessions.has('README.md: tour'), 'the quick tour is a session named "tour"');
});

for (const [name, session] of sessions) {
  test(`runs as printed: ${name}`, async (t) => {
    const shell = new ShellSession(t, { listen: await freePort(), control: await freePort(), app: await freePort() });
    for (const block of session.blocks) {
      assert.equal(block.lang, 'sh', `${session.doc} line ${block.line}: only sh blocks run`);
      await shell.run(block.text, `${session.doc} line ${block.line}`);
    }
  });
}

test('README: each JS block marked as an excerpt is the example code it names, verbatim', () => {
  const excerpts = docBlocks(readme).filter((b) => b.marker?.startsWith('excerpt '));
  assert.ok(excerpts.length > 0, 'the README shows example code');
  for (const block of excerpts) {
    const path = block.marker!.slice('excerpt '.length);
    assert.ok(isVerbatimExcerpt(block.text, read(path)), `README line ${block.line} is not a verbatim excerpt of ${path}`);
  }
});

test('README: the configuration reference is valid, names every key, and shows each default as the schema has it', () => {
  const [block, ...more] = docBlocks(readme).filter((b) => b.marker === 'config-reference');
  assert.ok(block !== undefined && more.length === 0, 'one <!-- test: config-reference --> block');
  const shown = parseYaml(block.text) as Record<string, unknown>;
  validateConfig(shown);
  const mentioned = (key: string) => new RegExp(`^[\\s#-]*(\\{ )?${key}:`, 'm').test(block.text) || block.text.includes(`{ ${key}:`);

  const defaults = validateConfig({ backends: ['http://127.0.0.1:3000'] }) as unknown as Record<string, unknown>;
  for (const [section, schema] of Object.entries(configSchema.shape)) {
    assert.ok(mentioned(section), `the reference names ${section}`);
    if (section === 'groups' || section === 'routes' || section === 'backends') continue; // an example, below
    const inner = (schema as { unwrap?: () => unknown }).unwrap?.() ?? schema;
    const shape = (inner as { shape?: Record<string, unknown> }).shape;
    const value = shown[section];
    if (shape === undefined) {
      if (defaults[section] !== undefined && section !== 'backends') assert.deepEqual(value, defaults[section], `${section}'s default`);
      continue;
    }
    for (const key of Object.keys(shape)) {
      assert.ok(mentioned(key), `the reference names ${section}.${key}`);
      const shownValue = (value as Record<string, unknown> | undefined)?.[key];
      const defaultValue = (defaults[section] as Record<string, unknown>)[key];
      if (shownValue !== undefined) assert.deepEqual(shownValue, defaultValue, `${section}.${key} is shown with its default`);
    }
  }

  for (const [name, schema] of Object.entries({ healthCheck: healthCheckSchema, passive: passiveSchema, compression: compressionSchema })) {
    for (const key of Object.keys(schema.shape)) assert.ok(mentioned(key), `the reference names groups.*.${name}.${key}`);
  }
  const routeShape = (configSchema.shape.routes.unwrap().element as unknown as { shape: Record<string, unknown> }).shape;
  for (const key of Object.keys(routeShape)) assert.ok(mentioned(key), `the reference names routes.*.${key}`);

  // groups and routes are an example, but what a group leaves out takes the defaults shown.
  const [groupName, group] = Object.entries(shown.groups as Record<string, Record<string, unknown>>)[0]!;
  const bare = validateConfig({ groups: { [groupName]: { servers: (group.servers as unknown[]).slice(0, 1) } }, routes: [{ group: groupName }] });
  const groupDefaults = bare.groups[groupName] as unknown as Record<string, unknown>;
  for (const key of Object.keys(groupSchema.shape)) {
    assert.ok(mentioned(key), `the reference names groups.*.${key}`);
    if (group[key] !== undefined && key !== 'servers') assert.deepEqual(group[key], groupDefaults[key], `groups.${groupName}.${key} is its default`);
  }
});

test('README: every HOLDFAST_* environment variable Holdfast reads is documented', () => {
  const names = new Set(FLAGS.map((f) => f.env));
  const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('.ts'));
  for (const path of sources) {
    for (const [name] of read(`src/${path}`).matchAll(/HOLDFAST_[A-Z0-9_]+/g)) {
      if (!name.startsWith('HOLDFAST_INTERNAL_')) names.add(name);
    }
  }
  for (const name of names) assert.ok(readme.includes(`\`${name}\``), `README documents ${name}`);
});
