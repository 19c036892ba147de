/**
 * Structured logging to stderr (stdout is for command output). JSON lines when stderr is
 * not a terminal, short human lines when it is. Callers must never pass secret values.
 */
import { pino, type Logger } from 'pino';
import { setting } from './options.js';

let root: Logger | undefined;

export function logger(): Logger {
  if (!root) {
    const level = setting('logLevel');
    root = pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
  }
  return root;
}
