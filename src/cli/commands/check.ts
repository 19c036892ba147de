import type { Command } from 'commander';

/** Placeholder until this command's issue lands; the owner replaces this file. */
export function register(_program: Command): void {}
