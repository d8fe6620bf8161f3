import { readFileSync } from 'node:fs';

// Linux /proc accounting in clock ticks (USER_HZ, 100 on every Linux we run on). Used for CPU per request,
// which stays meaningful when something else on a shared machine takes cycles and throughput drops.
const TICK_US = 10_000;

function childrenOf(pid) {
  const out = [];
  let tasks = [];
  try {
    tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return out;
  }
  for (const child of tasks) out.push(Number(child), ...childrenOf(Number(child)));
  return out;
}

/** Fields of /proc/PID/stat after the parenthesised command (which may contain spaces): field N is [N - 3]. */
function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function pidTicks(pid) {
  const fields = statFields(pid);
  return fields === null ? 0 : Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
}

/** utime + stime of a process and its descendants (the nginx master's worker does the work). */
export function treeCpuUs(pid) {
  return [pid, ...childrenOf(pid)].reduce((sum, p) => sum + pidTicks(p), 0) * TICK_US;
}

/** Resident memory (VmRSS) of a process and its descendants, in KiB; 0 for a process that is gone. */
export function treeRssKiB(pid) {
  return [pid, ...childrenOf(pid)].reduce((sum, p) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      return sum + (m ? Number(m[1]) : 0);
    } catch {
      return sum;
    }
  }, 0);
}

/**
 * Minor page faults (field 10) of a process and its descendants: a page the process touches after the
 * allocator gave it back to the kernel comes back this way, so a rate per request shows allocator churn.
 */
export function treeMinorFaults(pid) {
  return [pid, ...childrenOf(pid)].reduce((sum, p) => sum + Number(statFields(p)?.[7] ?? 0), 0);
}

/**
 * Time one core spent running processes, or lost to the hypervisor (steal), from /proc/stat. irq and softirq
 * are left out: loopback packets are processed in softirq on the sending core, which is accounted there and
 * not to the proxy's process, so counting them would flag every proxy as disturbed.
 */
export function coreBusyUs(cpu) {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  const [user, nice, system, , , , , steal] = line.split(/\s+/).slice(1).map(Number);
  return (user + nice + system + steal) * TICK_US;
}

function machineTicks() {
  const [user, nice, system, idle, iowait, , , steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return { busy: user + nice + system + steal, total: user + nice + system + idle + iowait + steal };
}

/** Share of all cores busy running processes over `sampleMs` (0-100). */
export async function machineBusyPct(sampleMs = 500) {
  const a = machineTicks();
  await new Promise((r) => setTimeout(r, sampleMs));
  const b = machineTicks();
  return b.total === a.total ? 0 : (100 * (b.busy - a.busy)) / (b.total - a.total);
}
