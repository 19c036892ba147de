/** Small file-system helpers shared across modules. */
import { access } from 'node:fs/promises';

/** Whether something exists at path (a missing or unreadable path is simply "no"). */
export function pathExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
