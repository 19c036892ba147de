/**
 * The Identity service: who the plugin is (name = socket name, version from package.json), which
 * services its role offers, and whether it is ready. Ready means an object store answered with
 * the configured credentials: with a -f Cluster the probe lists that Cluster's store itself; without
 * one no request has said which store to use yet, so the plugin reports ready only once a call
 * has reached a store (docs/cnpg-plugin.md, "Readiness").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../pg/binaries.js';
import { logger } from '../util/log.js';
import { unary } from './calls.js';
import { readCluster } from './config.js';
import { recoveryStoreRef, targetStoreRef } from '../config/plugin-form.js';
import type { PluginContext, PluginRole } from './context.js';
import { serviceDefinition } from './proto.js';
import type { PluginService } from './server.js';

/** PluginCapability.Service.Type names each role advertises (cnpg-i-plugin.md §1.2). */
export const ROLE_CAPABILITIES: Record<PluginRole, readonly string[]> = {
  instance: ['TYPE_WAL_SERVICE', 'TYPE_BACKUP_SERVICE', 'TYPE_METRICS'],
  restore: ['TYPE_RESTORE_JOB', 'TYPE_WAL_SERVICE'],
};

interface PackageJson {
  version: string;
  license: string;
  description: string;
}

let pkg: PackageJson | undefined;
function packageJson(): PackageJson {
  return (pkg ??= JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as PackageJson);
}

const PROJECT_URL = 'https://github.com/pgark/pgark';

export function pluginMetadata(name: string) {
  const p = packageJson();
  return {
    name,
    version: p.version,
    displayName: 'pgark',
    description: p.description,
    projectUrl: PROJECT_URL,
    repositoryUrl: PROJECT_URL,
    license: p.license,
    licenseUrl: 'https://www.apache.org/licenses/LICENSE-2.0',
    maturity: 'alpha',
    vendor: 'pgark',
    manifest: {},
  };
}

/** Probe's answer. A failure is logged with pgark's error text (names and URLs, never a secret value). */
async function probe(ctx: PluginContext): Promise<boolean> {
  const clusters = ctx.manifests.clusters;
  if (clusters.length !== 1) return ctx.storeReached;
  try {
    const cluster = readCluster(clusters[0]);
    const ref = ctx.role === 'restore' ? recoveryStoreRef(cluster, ctx.name) : targetStoreRef(cluster, ctx.name);
    await ctx.withTarget(ref, async (t) => {
      for await (const entry of t.store.list(`${t.serverName}/`)) {
        void entry;
        break;
      }
    });
    return true;
  } catch (err) {
    logger().warn({ err: (err as Error).message }, 'plugin not ready: the object store cannot be reached with the configured credentials');
    return false;
  }
}

export function identityService(ctx: PluginContext): PluginService {
  return {
    definition: serviceDefinition('identity'),
    handlers: {
      GetPluginMetadata: unary('Identity.GetPluginMetadata', async () => pluginMetadata(ctx.name)),
      GetPluginCapabilities: unary('Identity.GetPluginCapabilities', async () => ({
        capabilities: ROLE_CAPABILITIES[ctx.role].map((type) => ({ service: { type } })),
      })),
      Probe: unary('Identity.Probe', async () => ({ ready: await probe(ctx) })),
    },
  };
}
