import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';

/** Directory whose sitecustomize.py mends Debian's python3-snappy for barman-cloud (see that file). */
const PYTHON_FIX = join(PACKAGE_ROOT, 'test', 'harness', 'barman-python');

/** Environment for a barman-cloud 3.4 command: the store's credentials plus the snappy fix. */
export function barmanEnv(env: Record<string, string>): Record<string, string> {
  return { ...env, PYTHONPATH: PYTHON_FIX };
}
