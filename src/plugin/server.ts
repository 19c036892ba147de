/**
 * The plugin's gRPC server: plaintext gRPC on the Unix socket DIR/NAME that CNPG's instance
 * manager discovers (it dials every socket in PLUGIN_SOCKET_DIR, and the file name must equal the
 * name Identity reports). Services are registered as PluginService values, one per role, so each
 * service module (identity, wal, backup, metrics, restore job) stays independent of the server.
 * close() stops accepting, lets calls in flight finish and removes the socket.
 */
import { connect } from 'node:net';
import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { UserError } from '../util/errors.js';
import { logger } from '../util/log.js';

/** One gRPC service of the plugin: its definition (proto.ts serviceDefinition) and its method handlers. */
export interface PluginService {
  definition: ServiceDefinition;
  handlers: UntypedServiceImplementation;
}

export interface PluginServerOptions {
  socketDir: string;
  /** The plugin name: the socket's file name. */
  name: string;
}

export class PluginServer {
  private readonly server = new Server();
  private started = false;
  private closing: Promise<void> | undefined;
  readonly socketPath: string;

  constructor(private readonly opts: PluginServerOptions) {
    this.socketPath = join(opts.socketDir, opts.name);
  }

  /** Adds a service; only before listen(). */
  register(service: PluginService): this {
    if (this.started) throw new Error('PluginServer.register() after listen()');
    this.server.addService(service.definition, service.handlers);
    return this;
  }

  async listen(): Promise<void> {
    mkdirSync(this.opts.socketDir, { recursive: true });
    await removeStaleSocket(this.socketPath);
    await new Promise<void>((resolve, reject) => {
      this.server.bindAsync(`unix:${this.socketPath}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    this.started = true;
    logger().info({ socket: this.socketPath }, 'CNPG-I plugin listening');
  }

  /** Stops accepting calls, waits for those in flight, removes the socket. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.tryShutdown(() => {
        unlinkQuietly(this.socketPath);
        resolve();
      });
    });
    return this.closing;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone: grpc-js or a previous close removed it.
  }
}

/**
 * A socket file left by a plugin that died is removed so the new one can bind; one that still
 * answers belongs to a running plugin and is left alone, as is anything that is not a socket.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isSocket()) {
    throw new UserError(`${path} exists and is not a socket`, 'remove it, or choose another --socket-dir or --name');
  }
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) {
    throw new UserError(`another process is listening on ${path}`, 'stop the other plugin first, or give this one another --name or --socket-dir');
  }
  logger().info({ socket: path }, 'removing stale plugin socket (nothing listens on it)');
  unlinkSync(path);
}
