import { FLAGS, OTHER_ENV } from '../config/flags.js';
import type { CommandName } from './args.js';

const USAGE = `Usage:
  holdfast [options]                      proxy clients to the backends
  holdfast demo [options]                 start a demo backend and Holdfast in front of it
  holdfast publish CHANNEL MESSAGE        publish MESSAGE to CHANNEL through the control listener
  holdfast probe URL [--json] [--sse] [--ws]  what a server does with connections
  holdfast help [COMMAND] | --help | --version

Each command has its own help: holdfast publish --help, holdfast demo --help, holdfast probe --help.`;

const flagLines = FLAGS.map((f) => `  --${`${f.flag} <${f.kind === 'int' ? 'n' : 'value'}>`.padEnd(36)} ${f.env}\n      ${f.help}`).join('\n');

const SERVE_HELP = `Holdfast: a realtime reverse proxy for stateless HTTP backends.

${USAGE}

Options (each also as an environment variable, shown after the flag):
${flagLines}
  --config <file>                        HOLDFAST_CONFIG
      YAML or JSON file with the same settings (see README); flags and env override it
  -h, --help                             this help
  --version                              the version

Environment: the variables above, and
${OTHER_ENV.map((e) => `  ${e.env.padEnd(38)} ${e.help}`).join('\n')}
A HOLDFAST_* variable Holdfast does not know is reported at start (a warning, with the name it resembles).

Precedence: built-in defaults < config file < HOLDFAST_* environment < flags.
Exit codes: 0 after a clean shutdown, 1 on a runtime failure (such as a port in use, or requests cut by the
drain deadline), 2 on a bad configuration or command line.
SIGTERM/SIGINT drain gracefully (timeouts.drainMs); a second signal exits at once.
SIGHUP (or POST /reload on the control listener) reloads backends, groups and routes from the same sources;
a bad configuration is refused and the running one stays.
With --workers above 1, send these signals to the primary (the process started): it applies them to every worker.
`;

const DEMO_HELP = `Usage: holdfast demo [options]

Starts a small demo backend on a free loopback port and Holdfast in front of it, then prints the URL to open:
a page that holds an SSE stream and a long-poll through Holdfast, and publishes to them.
Publish from another shell with: holdfast publish demo "hello"

Options: every option of holdfast itself (holdfast --help); --backend is not needed. Most useful here:
  --listen <host:port>        where the page is served (default 127.0.0.1:8080)       HOLDFAST_LISTEN
  --control <host:port>       metrics, health and publish (default 127.0.0.1:5561)     HOLDFAST_CONTROL
  --workers <n|auto>          several processes sharing the ports                      HOLDFAST_WORKERS
  --log-level <level>         fatal|error|warn|info|debug|trace|silent                 HOLDFAST_LOG_LEVEL
  -h, --help                  this help

Ctrl-C stops it (a graceful drain).
`;

const PUBLISH_HELP = `Usage: holdfast publish CHANNEL MESSAGE [options]

Publishes MESSAGE to CHANNEL through a running Holdfast's control listener, in every format at once: an SSE
event (one data: line per line of MESSAGE), an HTTP-stream chunk, a long-poll body and a WebSocket message.

Options:
  --control <host:port>       the control listener (default 127.0.0.1:5561)            HOLDFAST_CONTROL
  --id <id>                   the item's id: the SSE id:, Last-Event-ID replay, de-duplication
  --event <name>              the SSE event name (default message)
  --key <key>                 sent as a Bearer token, when the server sets publish.key HOLDFAST_PUBLISH_KEY
  -h, --help                  this help

It prints how many held connections the message reached (on that node; and, with Redis, how many other
nodes the bus handed it to).
Exit codes: 0 published; 1 refused by Holdfast, or the control listener unreachable or not Holdfast's;
2 a bad command line; 3 a duplicate: an item with that --id was already published to CHANNEL within
push.dedupWindowMs, so nothing was sent.
`;

export function helpFor(command: CommandName): string {
  switch (command) {
    case 'serve':
      return SERVE_HELP;
    case 'demo':
      return DEMO_HELP;
    case 'publish':
      return PUBLISH_HELP;
  }
}
