/**
 * The Identity service: who the plugin is (name = socket name, version from package.json), which
 * services its role offers, and whether it is ready (readiness.ts; docs/cnpg-plugin.md, "Readiness").
 */
import { packageJson } from '../util/package.js';
import { unary } from './calls.js';
import type { PluginContext, PluginRole } from './context.js';
import { serviceDefinition } from './proto.js';
import type { PluginService } from './server.js';

/** PluginCapability.Service.Type names each role advertises (cnpg-i-plugin.md §1.2). */
export const ROLE_CAPABILITIES: Record<PluginRole, readonly string[]> = {
  instance: ['TYPE_WAL_SERVICE', 'TYPE_BACKUP_SERVICE', 'TYPE_METRICS'],
  restore: ['TYPE_RESTORE_JOB', 'TYPE_WAL_SERVICE'],
};


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

export function identityService(ctx: PluginContext): PluginService {
  return {
    definition: serviceDefinition('identity'),
    handlers: {
      GetPluginMetadata: unary('Identity.GetPluginMetadata', async () => pluginMetadata(ctx.name)),
      GetPluginCapabilities: unary('Identity.GetPluginCapabilities', async () => ({
        capabilities: ROLE_CAPABILITIES[ctx.role].map((type) => ({ service: { type } })),
      })),
      // Kept current in the background (readiness.ts): CNPG probes before every call and must never wait on a store.
      Probe: unary('Identity.Probe', async () => ({ ready: ctx.ready })),
    },
  };
}
