/**
 * Starts a server binary from node_modules/.bin on a free loopback port and stops it again;
 * shared by the s3rver and Azurite harnesses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.js';

export interface ServerProcess {
  port: number;
  child: ChildProcess;
  /** Everything the server wrote, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** node_modules/.bin of the checkout (tests run from dist/test/harness). */
export function binPath(name: string): string {
  return join(process.cwd(), 'node_modules', '.bin', name);
}

/**
 * Spawns `bin` with the arguments `argsFor(port)` and waits until the port accepts connections.
 * A free port can be taken by someone else between the check and the listen, so a server that
 * dies while starting is retried on a fresh port.
 */
export async function startServerProcess(bin: string, argsFor: (port: number) => string[], label: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  let lastOutput = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const child = spawn(binPath(bin), argsFor(port), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let output = '';
    child.stdout!.on('data', (d) => (output = (output + d).slice(-8000)));
    child.stderr!.on('data', (d) => (output = (output + d).slice(-8000)));
    const exited = new Promise<'exited'>((resolve) => child.once('exit', () => resolve('exited')));
    // Azurite took over 30 s to listen while several test suites shared the 2 cores (load 27-31,
    // 2026-12-06), which failed a test that had nothing wrong; one that never listens is killed.
    const ready = await Promise.race([waitForPort(port, '127.0.0.1', 180_000).then(() => 'ready' as const), exited]).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${label} did not start: ${err.message}\n${output}`);
    });
    if (ready === 'ready') {
      // A test process that crashes or exits without stop() must not leave the server behind.
      const killOnExit = () => child.kill('SIGKILL');
      process.once('exit', killOnExit);
      void exited.then(() => process.removeListener('exit', killOnExit));
      return {
        port,
        child,
        output: () => output,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(killer);
        },
      };
    }
    lastOutput = output;
    child.kill('SIGKILL');
  }
  throw new Error(`${label} did not start: ${lastOutput}`);
}

/**
 * Runs a harness module as its own process, handing it `config` as JSON in the environment
 * variable `envName`; resolves once it prints "listening PORT". Harness servers that must not
 * share the test's event loop (tests block it with spawnSync; benchmarks measure in it) run so.
 */
export async function startModuleProcess(modulePath: string, envName: string, config: unknown, label: string): Promise<{ port: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [modulePath], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, [envName]: JSON.stringify(config) },
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => process.removeListener('exit', killOnExit));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /^listening (\d+)$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error(`${label} exited before listening: ${out}`)));
  });
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
