// Whole-machine readings for bench/scale: load average, busy CPU time, the kernel's socket memory
// (/proc/net/sockstat) and slab (/proc/meminfo), so that the cost of a held connection outside the server
// process (the kernel's socket structures) is measured too, not guessed.
import { readFileSync } from 'node:fs';
import { sleep } from '../fanout/peers.mjs';

export function load1() {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/**
 * Waits (bounded by `maxWaitS`) until the 1-minute load is at most `maxLoad`: other developers run test
 * suites on this machine. Returns the load it started with.
 */
export async function waitForQuiet(maxLoad, maxWaitS, log) {
  const deadline = Date.now() + maxWaitS * 1000;
  let l = load1();
  while (l > maxLoad && Date.now() < deadline) {
    log(`  load ${l.toFixed(2)} > ${maxLoad}: waiting (at most ${Math.round((deadline - Date.now()) / 1000)} s more)`);
    await sleep(15_000);
    l = load1();
  }
  if (l > maxLoad) log(`  load still ${l.toFixed(2)} after ${maxWaitS} s: running anyway (the row says so)`);
  return l;
}

/** Busy seconds of all cores together (user nice system irq softirq steal) from /proc/stat. */
export function hostBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

/** TCP sockets in use, their buffer memory (sockstat `mem`, in pages), and the kernel slab (KiB). */
export function kernelMemory() {
  const sockstat = readFileSync('/proc/net/sockstat', 'utf8');
  const tcp = /TCP: inuse (\d+) orphan \d+ tw (\d+) alloc (\d+) mem (\d+)/.exec(sockstat);
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1] ?? NaN);
  return {
    tcpInuse: Number(tcp?.[1] ?? NaN),
    tcpTw: Number(tcp?.[2] ?? NaN),
    tcpMemPages: Number(tcp?.[4] ?? NaN),
    slabKiB: kib('Slab'),
    memAvailableKiB: kib('MemAvailable'),
  };
}
