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

/**
 * The whole machine's busy CPU seconds over time (/proc/stat: every CPU's time less idle and iowait),
 * and those of some processes of it (`watched`, e.g. the test store's), sampled every 25 ms, so that a
 * phase known only afterwards (from a server log's timestamps) can be asked how busy the machine was:
 * the bound on a phase that shares the cores with other work.
 */
export class MachineCpu {
  private readonly samples: { at: number; busy: number; watched: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly lastCpu = new Map<number, number>();

  constructor(private readonly watched: number[] = []) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 25);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Busy CPU seconds between two times (s since the epoch), of the machine and of the watched processes. */
  busyBetween(from: number, to: number): { machine: number; watched: number } {
    const [a, b] = [this.at(from), this.at(to)];
    return { machine: b.busy - a.busy, watched: b.watched - a.watched };
  }

  /** The sampled values at a time, interpolated between the samples around it. */
  private at(time: number): { busy: number; watched: number } {
    const s = this.samples;
    const i = s.findIndex((x) => x.at >= time);
    if (i <= 0) return i === 0 ? s[0] : s[s.length - 1];
    const [a, b] = [s[i - 1], s[i]];
    const f = (time - a.at) / (b.at - a.at);
    return { busy: a.busy + (b.busy - a.busy) * f, watched: a.watched + (b.watched - a.watched) * f };
  }

  private sample(): void {
    // cpu  user nice system idle iowait irq softirq steal (clock ticks of 1/100 s)
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1, 9).map(Number);
    const busy = f.reduce((sum, v) => sum + v, 0) - f[3] - f[4];
    let watched = 0;
    for (const pid of this.watched) {
      try {
        this.lastCpu.set(pid, cpuSeconds(pid));
      } catch {
        // exited: its last sample stands
      }
      watched += this.lastCpu.get(pid) ?? 0;
    }
    this.samples.push({ at: Date.now() / 1000, busy: busy / 100, watched });
  }
}

/** pids of the processes whose command line matches `pattern`. */
export function pidsMatching(pattern: RegExp): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (pattern.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
