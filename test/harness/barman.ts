import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/package.js';

/** Directory whose sitecustomize.py mends Debian's python3-snappy for barman-cloud (see that file). */
const PYTHON_FIX = join(PACKAGE_ROOT, 'test', 'harness', 'barman-python');

/**
 * barman 3.4 imports `distutils.version`, which Debian's setuptools answers with its own copy by
 * default (distutils-precedence.pth), importing setuptools and pkg_resources first: a scan of every
 * installed distribution at each start, 0.67 against 0.19 CPU s for `import
 * barman.clients.cloud_walrestore` (2026-12-07). The suite starts barman-cloud about 570 times, so
 * that was ~270 of its ~2900 CPU s. Python 3.11's own distutils holds the same LooseVersion. Benchmarks
 * get the same faster peer: barman dropped the import in 3.18 (EnterpriseDB/barman#1157), and a peer
 * measured faster than most users run it only makes pgark's ratios against it conservative.
 *
 * The environment every barman 3.4 Python process gets (barman-cloud commands through a store's
 * `barman.env`, and barman's modules run directly): that setting plus the snappy fix.
 */
export const BARMAN_PYTHON_ENV: Readonly<Record<string, string>> = Object.freeze({
  SETUPTOOLS_USE_DISTUTILS: 'stdlib',
  PYTHONPATH: PYTHON_FIX,
});
