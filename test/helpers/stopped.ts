import { readdirSync, readFileSync } from 'node:fs';
import { eventually } from './until.js';

/**
 * Stops a process with SIGSTOP and resolves once every one of its threads is stopped (state `T` in
 * /proc/<pid>/task/<tid>/stat). `kill` returns when the signal is queued, not when it has taken effect: on
 * a loaded machine a multi-threaded server (nats-server's Go runtime) could still answer a request sent
 * right after it.
 */
export async function stopProcess(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  await eventually(() => threadStates(pid).every((state) => state === 'T' || state === 't'), 5_000, `process ${pid} to be stopped`);
}

function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // The state follows the command name in parentheses, which may itself hold spaces or parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  });
}
