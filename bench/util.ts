/**
 * What several benchmarks share: their --name value options, the --wan store shaping, what /proc says about a process, and
 * the bytes a tool stored in the s3rver bucket.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { DEFAULT_WAN, type WanShape } from '../test/harness/proxy.js';
import type { S3rver } from '../test/harness/s3rver.js';

/** The value after --name on the command line, if given. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

export function numberOption(name: string, fallback: number): number {
  const value = option(name);
  return value === undefined ? fallback : Number(value);
}

/** A "Name: N kB" field of /proc/<pid>/status (VmRSS, VmHWM) in KiB; 0 once the process is gone. */
export function procStatusKiB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds a live process has used so far (user + system), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat(5) (the split starts at field 3), in clock ticks of 1/100 s on Linux.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds of this process's children that it has waited for (cutime + cstime, fields 16-17 of
 * stat(5)): every tool call, and whatever each call waited for in turn. A daemon a call left
 * running is not in it.
 */
export function childrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Bytes stored under a prefix of the s3rver bucket (its data directory mirrors the keys). */
export function storedBytes(s3: S3rver, prefix: string): number {
  let total = 0;
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('._S3rver_object')) total += statSync(p).size;
    }
  };
  walk(join(s3.dataDir, s3.bucket, prefix));
  return total;
}


/**
 * --wan [--rtt-ms N] [--bandwidth-mbps N]: run every tool through the shaping proxy, as against a
 * cloud store N ms away with N MB/s (megabytes, 10^6) per connection; defaults 25 ms and 40 MB/s.
 */
export function wanOption(): WanShape | undefined {
  if (!process.argv.includes('--wan')) return undefined;
  return { rttMs: numberOption('rtt-ms', DEFAULT_WAN.rttMs), bytesPerSecond: numberOption('bandwidth-mbps', DEFAULT_WAN.bytesPerSecond / 1e6) * 1e6 };
}

/** The store's conditions for a benchmark's header line, with the load average they ran under. */
export function wanConditions(shape: WanShape | undefined): string {
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  return `${shape ? `WAN-shaped store (${shape.rttMs} ms RTT, ${shape.bytesPerSecond / 1e6} MB/s per connection)` : 'loopback store'}, load average ${load}`;
}
