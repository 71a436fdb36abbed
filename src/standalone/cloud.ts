// Standalone mode's cloud: the endpoints and identity from the environment when they are set, otherwise the
// bundled emulator of STS and Container Registry with its demo world (two accounts, roles, instances).
import { endpointsFromEnv, type Endpoints } from '../cloud/endpoints.js';
import { identityFromEnv, staticIdentity, type Identity } from '../cloud/identity.js';
import type { Emulator, DemoInfo } from '../emulator/index.js';

export interface StandaloneCloud {
  endpoints: Endpoints;
  identity: Identity;
  emulator?: Emulator;
  demo?: DemoInfo;
}

export async function standaloneCloud(env: NodeJS.ProcessEnv): Promise<StandaloneCloud> {
  if (env.ALIBABA_CLOUD_STS_ENDPOINT || env.ALIBABA_CLOUD_CR_ENDPOINT) {
    const endpoints = endpointsFromEnv(env);
    return { endpoints, identity: identityFromEnv(env, endpoints.sts) };
  }
  const { demoState, startEmulator } = await import('../emulator/index.js');
  const world = demoState();
  const emulator = await startEmulator({ world, host: '127.0.0.1', port: Number(env.EMULATOR_PORT ?? 0) });
  return {
    endpoints: { sts: emulator.stsEndpoint, cr: (region) => emulator.crEndpoint(region) },
    identity: staticIdentity('emulator demo user', { accessKeyId: world.demo.accessKeyId, accessKeySecret: world.demo.accessKeySecret }),
    emulator,
    demo: world.demo,
  };
}
