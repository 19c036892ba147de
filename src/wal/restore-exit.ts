/**
 * How a restore_command or recovery_end_command tells PostgreSQL to stop the recovery rather than
 * end it. Kept apart from restore.ts (which loads the codecs and the store) so that the light
 * recovery_end_command entry (recovery/finish-main.ts) and the server-log follower need no more.
 */

/**
 * The exit status of a restore_command (and recovery_end_command) that must stop the recovery.
 * PostgreSQL reads 1-125 as "not in the archive", ends the recovery there and promotes on what it
 * has; above 125 (what a shell returns when it cannot run a command, or for a signal) it aborts
 * with FATAL. 255 is neither 126/127 nor 128 + a signal number PostgreSQL treats specially (SIGTERM).
 */
export const ABORT_RECOVERY_EXIT = 255;

/** Opens the message of every error that aborts a recovery, so `pgark restore --start` can find it in the server log. */
export const ABORT_RECOVERY_MARK = 'recovery stopped:';
