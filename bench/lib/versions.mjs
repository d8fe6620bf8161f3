import { spawnSync } from 'node:child_process';
import os from 'node:os';

/** The first line a tool prints about itself, from stdout or stderr (nginx -v and wrk -v use stderr, wrk exits 1). */
export function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0].trim();
}

/** Node, nginx and HAProxy, then `middle` (other tools), then the cores: the versions line of a peer bench. */
export function peerVersions(middle = []) {
  return [
    `node ${process.version}`,
    firstLine('nginx', ['-v']).replace('nginx version: ', ''),
    firstLine('haproxy', ['-v']).replace(/ - https.*/, ''),
    ...middle,
    `${os.cpus().length} x ${os.cpus()[0].model}`,
  ].join(', ');
}
