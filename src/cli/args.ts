import { parseArgs } from 'node:util';
import { FLAGS } from '../config/flags.js';
import { closestName } from '../config/suggest.js';

/** `serve` is plain `holdfast`. */
export type CommandName = 'serve' | 'demo' | 'publish';

export interface CommandLine {
  command: CommandName;
  values: Record<string, string | string[] | boolean | undefined>;
  /** After the command name: publish's CHANNEL and MESSAGE. */
  args: string[];
}

/** A command line Holdfast cannot run: the message says why and what to type instead (exit 2). */
export class UsageError extends Error {
  constructor(message: string, command: CommandName) {
    super(`${message}\nRun ${helpCommand(command)} for the options.`);
  }
}

type OptionDef = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };

const HELP: Record<string, OptionDef> = { help: { type: 'boolean', short: 'h' } };

const SERVE_OPTIONS: Record<string, OptionDef> = {
  ...HELP,
  version: { type: 'boolean' },
  config: { type: 'string' },
  ...Object.fromEntries(FLAGS.map((f) => [f.flag, { type: f.kind === 'boolean' ? 'boolean' : 'string', multiple: f.kind === 'list' }])),
};

const PUBLISH_OPTIONS: Record<string, OptionDef> = {
  ...HELP,
  control: { type: 'string' },
  id: { type: 'string' },
  event: { type: 'string' },
  key: { type: 'string' },
};

const OPTIONS: Record<CommandName, Record<string, OptionDef>> = { serve: SERVE_OPTIONS, demo: SERVE_OPTIONS, publish: PUBLISH_OPTIONS };
// probe parses its own options (src/probe/command.ts); it is here for "did you mean".
const COMMANDS: readonly string[] = ['demo', 'publish', 'probe', 'help'];

/** What a string option's value looks like, for "--listen needs a value (host:port)". */
const VALUE_NAMES: Record<string, string> = {
  ...Object.fromEntries(FLAGS.map((f) => [f.flag, f.expects])),
  config: 'a YAML or JSON file',
  id: 'an item id',
  event: 'an SSE event name',
  key: 'the publish key',
};

/**
 * Reads argv for one of the commands. Node's own parseArgs errors ("Unknown option '--port'. To specify a
 * positional argument starting with a '-'...") are written for programmers; this parses leniently and answers
 * in Holdfast's words: the option a typo resembles, the flag people reach for instead (`--port` is `--listen`),
 * the command an option belongs to.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const allOptions = { ...SERVE_OPTIONS, ...PUBLISH_OPTIONS };
  const { values, positionals, tokens } = parseArgs({ args: [...argv], options: allOptions, allowPositionals: true, strict: false, tokens: true });
  let command: CommandName = 'serve';
  let rest = positionals;
  if (positionals[0] === 'help') {
    // `holdfast help publish` is `holdfast publish --help`.
    const topic = positionals[1];
    command = topic === 'demo' || topic === 'publish' ? topic : 'serve';
    return { command, values: { help: true }, args: [] };
  }
  if (positionals[0] === 'demo' || positionals[0] === 'publish') {
    command = positionals[0];
    rest = positionals.slice(1);
  }
  const known = OPTIONS[command];
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const def = known[token.name];
    if (def === undefined) {
      const typedValue = token.value ?? nextPositional(tokens, token.index);
      throw new UsageError(unknownOptionMessage(token.rawName, token.name, typedValue, command), command);
    }
    if (def.type === 'string' && token.value === undefined) {
      const next = argv[token.index + 1];
      const dash = next?.startsWith('-') === true ? ` (for a value that starts with "-", write ${token.rawName}=${next})` : '';
      throw new UsageError(`${token.rawName} needs a value: ${VALUE_NAMES[token.name] ?? 'a value'}${dash}`, command);
    }
  }
  if (command === 'serve' && rest.length > 0) {
    const typed = rest[0]!;
    const suggestion = closestName(typed, COMMANDS);
    throw new UsageError(`unknown command "${typed}"${suggestion === undefined ? '' : `; did you mean holdfast ${suggestion}?`}`, command);
  }
  if (command === 'demo' && rest.length > 0) throw new UsageError(`holdfast demo takes no arguments, got "${rest.join(' ')}"`, command);
  return { command, values: values, args: rest };
}

export function helpCommand(command: CommandName): string {
  return command === 'serve' ? 'holdfast --help' : `holdfast ${command} --help`;
}

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

function nextPositional(tokens: readonly Token[], index: number): string | undefined {
  const next = tokens.find((t) => t.index === index + 1);
  return next?.kind === 'positional' ? next.value : undefined;
}

function unknownOptionMessage(rawName: string, name: string, value: string | undefined, command: CommandName): string {
  const guess = guessedOption(name, value, command);
  if (guess !== undefined) return `unknown option ${rawName}: ${guess}`;
  const elsewhere = command === 'publish' ? SERVE_OPTIONS[name] : PUBLISH_OPTIONS[name];
  if (elsewhere !== undefined && name.length > 1) {
    return command === 'publish'
      ? `--${name} is an option of holdfast itself, not of holdfast publish`
      : `--${name} is an option of holdfast publish (holdfast publish CHANNEL MESSAGE --${name} ...)`;
  }
  const suggestion = closestName(name, Object.keys(OPTIONS[command]));
  return `unknown option ${rawName}${suggestion === undefined ? '' : `; did you mean --${suggestion}?`}`;
}

/** The options people bring from other servers and tools, pointed at Holdfast's own. */
function guessedOption(name: string, value: string | undefined, command: CommandName): string | undefined {
  const n = name.toLowerCase();
  const port = value !== undefined && /^\d+$/.test(value) ? value : 'PORT';
  if (command === 'publish') {
    if (['port', 'p', 'control-port'].includes(n)) return `the control listener is host:port: use --control 127.0.0.1:${port}`;
    if (['host', 'url', 'control-url', 'server'].includes(n)) return `use --control host:port (default 127.0.0.1:5561)`;
    if (['channel', 'message', 'data', 'content'].includes(n)) return 'CHANNEL and MESSAGE come without a flag: holdfast publish CHANNEL MESSAGE';
    if (['token', 'auth', 'secret', 'publish-key', 'bearer'].includes(n)) return 'use --key KEY (or HOLDFAST_PUBLISH_KEY)';
    return undefined;
  }
  if (['port', 'p', 'listen-port', 'http-port'].includes(n)) {
    return `Holdfast takes an address as host:port: use --listen 127.0.0.1:${port} (0.0.0.0:${port} for every interface)`;
  }
  if (['host', 'bind', 'address', 'addr', 'hostname', 'listen-host'].includes(n)) {
    return `Holdfast takes an address as host:port: use --listen ${value ?? 'HOST'}:8080`;
  }
  if (['config-file', 'configfile', 'conf', 'c', 'config-path'].includes(n)) return `use --config ${value ?? 'FILE'} (or HOLDFAST_CONFIG)`;
  if (['upstream', 'upstreams', 'backends', 'target', 'origin', 'server', 'proxy', 'proxy-pass', 'to'].includes(n)) {
    return 'use --backend URL, once per backend (--backend http://127.0.0.1:3000 --backend http://127.0.0.1:3001)';
  }
  if (['verbose', 'debug', 'trace'].includes(n)) return `use --log-level ${n === 'trace' ? 'trace' : 'debug'}`;
  if (['quiet', 'silent', 'q'].includes(n)) return 'use --log-level warn (or silent)';
  if (['v', 'V'].includes(name)) return 'use --version (or --log-level debug for more logging)';
  if (['threads', 'cluster', 'processes', 'concurrency', 'instances', 'j'].includes(n)) return 'use --workers N (or --workers auto, one per core)';
  if (['redis', 'nats', 'redis-url', 'nats-url', 'broker'].includes(n)) return 'use --bus redis://host:port or --bus nats://host:port';
  if (['metrics', 'metrics-port', 'admin', 'admin-port', 'control-port', 'management'].includes(n)) {
    return `the control listener (metrics, health, publish) is host:port: use --control 127.0.0.1:${port === 'PORT' ? '5561' : port}`;
  }
  if (n === 'timeout') return 'use one of --request-head-timeout, --keep-alive-timeout, --upstream-timeout or --drain-timeout (ms)';
  return undefined;
}
