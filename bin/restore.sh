#!/bin/sh
# Restore tool: a thin wrapper over `pgark logical restore`, configured by the environment
# (RESTORE_MODE, STORAGE_PROVIDER, BACKUP_FILE_PATH, DB_* ...; see docs/logical-backups.md).
# Symlinks are resolved so the script also works when linked into a PATH directory.
set -eu
self=$(readlink -f "$0")
exec node "$(dirname "$self")/pgark.js" logical restore "$@"
