// Standalone mode's cloud: the endpoints and identity from the environment when they are set, otherwise the
// bundled emulator of STS and Container Registry with its demo world (two accounts, roles, instances).
// The emulator lives outside src/ (emulator/): it is not part of the product and not in the image, so it is
// loaded by a path the compiler does not follow, and only here.
import { endpointsFromEnv, type Endpoints } from '../cloud/endpoints.js';
import type { EndpointsConfig } from '../config/config.js';
import { identityFromEnv, staticIdentity, type Identity } from '../cloud/identity.js';

/** The part of the emulator standalone mode uses (emulator/index.ts). */
export interface BundledEmulator {
  url: string;
  stsEndpoint: string;
  ramEndpoint: string;
  crEndpoint(region: string): string;
  close(): Promise<void>;
}

export interface EmulatorModule<World extends DemoWorld = DemoWorld> {
  demoState(): World;
  startEmulator(o: { world: World; host: string; port: number }): Promise<BundledEmulator>;
}

interface DemoWorld {
  demo: { accessKeyId: string; accessKeySecret: string };
}

export interface StandaloneCloud {
  endpoints: Endpoints;
  identity: Identity;
  emulator?: BundledEmulator;
}

const EMULATOR_MODULE = '../../emulator/index.js';

export async function standaloneCloud(env: NodeJS.ProcessEnv, file: EndpointsConfig = {}): Promise<StandaloneCloud> {
  if (env.ALIBABA_CLOUD_STS_ENDPOINT || env.ALIBABA_CLOUD_CR_ENDPOINT || file.sts || file.cr) {
    const endpoints = endpointsFromEnv(env, file);
    return { endpoints, identity: identityFromEnv(env, endpoints.sts) };
  }
  let mod: EmulatorModule;
  try {
    mod = (await import(EMULATOR_MODULE)) as EmulatorModule;
  } catch (e) {
    throw new Error(
      `standalone mode needs the bundled emulator (emulator/ in the source tree, not in the image) or ` +
        `ALIBABA_CLOUD_STS_ENDPOINT and ALIBABA_CLOUD_CR_ENDPOINT: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  const world = mod.demoState();
  const emulator = await mod.startEmulator({ world, host: '127.0.0.1', port: Number(env.EMULATOR_PORT ?? 0) });
  return {
    endpoints: { sts: emulator.stsEndpoint, ram: emulator.ramEndpoint, cr: (region) => emulator.crEndpoint(region) },
    identity: staticIdentity('emulator demo user', { accessKeyId: world.demo.accessKeyId, accessKeySecret: world.demo.accessKeySecret }),
    emulator,
  };
}
