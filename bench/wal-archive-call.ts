/**
 * The bench's stand-in for CloudNativePG's per-segment caller (`/controller/manager wal-archive
 * %p`, a Go binary that starts in milliseconds and makes one WAL.Archive call): a process that
 * loads nothing but node:http2, encodes the WALArchiveRequest by hand (cnpg-i wal.proto fields
 * 1-4) and makes one unary gRPC call over the plugin's socket. Loading @grpc/grpc-js and the
 * protos per segment (the test harness's client) costs 150-400 ms here and measured Node's start,
 * not the plugin; this costs a bare Node start.
 *
 *   node wal-archive-call.js SOCKET CLUSTER.json PARAMS.json %p
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join, resolve } from 'node:path';

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field (wire type 2). */
const field = (no: number, value: Buffer) => Buffer.concat([varint((no << 3) | 2), varint(value.length), value]);

function archiveRequest(cluster: Buffer, path: string, parameters: Record<string, string>, checkEmpty: boolean): Buffer {
  const entries = Object.entries(parameters).map(([k, v]) => field(3, Buffer.concat([field(1, Buffer.from(k)), field(2, Buffer.from(v))])));
  return Buffer.concat([field(1, cluster), field(2, Buffer.from(path)), ...entries, Buffer.from([(4 << 3) | 0, checkEmpty ? 1 : 0])]);
}

function call(socket: string, message: Buffer): Promise<{ status: string; detail: string }> {
  return new Promise((done, fail) => {
    const session = http2Connect('http://localhost', { createConnection: () => netConnect(socket) });
    session.on('error', fail);
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(message.length, 1);
    const req = session.request({ ':method': 'POST', ':path': '/cnpgi.wal.v1.WAL/Archive', 'content-type': 'application/grpc', te: 'trailers' });
    let status: string | undefined;
    let detail = '';
    // A failure can come as trailers-only (in the response headers) or as trailers.
    const read = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) detail = decodeURIComponent(String(h['grpc-message']));
    };
    req.on('response', read);
    req.on('trailers', read);
    req.on('error', fail);
    req.resume();
    req.on('close', () => {
      session.close();
      done({ status: status ?? 'no grpc-status', detail });
    });
    req.end(Buffer.concat([frame, message]));
  });
}

const [socket, clusterFile, paramsFile, walPath] = process.argv.slice(2);
const parameters = JSON.parse(readFileSync(paramsFile, 'utf8')) as Record<string, string>;
const checkEmpty = existsSync(join(process.cwd(), '.check-empty-wal-archive'));
const r = await call(socket, archiveRequest(readFileSync(clusterFile), resolve(walPath), parameters, checkEmpty));
if (r.status !== '0') process.stderr.write(`archive: grpc-status ${r.status}: ${r.detail}\n`);
process.exitCode = r.status === '0' ? 0 : 1;
