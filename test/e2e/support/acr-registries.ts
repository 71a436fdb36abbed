// Real registries standing in for ACR Enterprise instances (./registry.ts, one per instance, token auth against the
// emulator's token service on its HTTPS port), the --resolve/--ca arguments with which test/e2e/kubelet-pull
// reaches them under their ACR host names, and pushing test images to them as an image publisher would
// (`docker login` with a GetAuthorizationToken password). Shared by the files that pull real images.
import PopCore from '@alicloud/pop-core';
import { readFileSync } from 'node:fs';
import type { Emulator } from '../../../emulator/index.js';
import type { Pki } from './pki.js';
import { startRegistry, type Registry } from './registry.js';
import { run } from './harness.js';

/** The token realm host of a region, dialed to the emulator's HTTPS port (the real realm host is not documented). */
export const realmHost = (region: string) => `dockerauth.${region}.aliyuncs.com`;

/** The emulator's TLS certificate, for the realm hosts of these regions: pass it to startEmulator({ tls }). */
export function realmTls(pki: Pki, regions: string[]): { cert: Buffer; key: Buffer } {
  const cert = pki.issue('token-service', regions.map(realmHost));
  return { cert: readFileSync(cert.cert), key: readFileSync(cert.key) };
}

export interface InstanceRegistry {
  instanceId: string;
  region: string;
  /** Every host the instance answers on (public, VPC, custom); the first is the probe's. */
  domains: string[];
}

export interface InstanceRegistries {
  registries: Registry[];
  /** kubelet-pull's --ca and --resolve arguments: every domain and realm host, nothing else. */
  network: string[];
  stop(): Promise<void>;
}

export async function startInstanceRegistries(o: { binary: string; workDir: string; emu: Emulator; pki: Pki; instances: InstanceRegistry[] }): Promise<InstanceRegistries> {
  const registries: Registry[] = [];
  const stop = async () => {
    for (const r of registries) await r.stop();
  };
  const network = ['--ca', o.pki.caCert];
  try {
    for (const i of o.instances) {
      const r = await startRegistry(
        {
          binary: o.binary,
          workDir: o.workDir,
          instanceId: i.instanceId,
          realm: `https://${realmHost(i.region)}${o.emu.registryAuth.path}`,
          service: o.emu.registryAuth.service(i.instanceId),
          issuer: o.emu.registryAuth.issuer,
          jwks: o.emu.registryAuth.jwks(),
          tls: o.pki.issue(i.instanceId, i.domains),
          caCert: o.pki.caCert,
        },
        i.domains[0]!,
      );
      registries.push(r);
      for (const d of i.domains) network.push('--resolve', `${d}=${r.address}`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  for (const region of new Set(o.instances.map((i) => i.region))) network.push('--resolve', `${realmHost(region)}=127.0.0.1:${o.emu.tlsPort}`);
  return { registries, network, stop };
}

/** GetAuthorizationToken through the real CR API of the emulator, as `docker login` users do. */
export async function registryLogin(emu: Emulator, key: { accessKeyId: string; accessKeySecret: string }, region: string, instanceId: string): Promise<string> {
  const client = new PopCore({ endpoint: emu.crEndpoint(region), apiVersion: '2018-12-01', ...key });
  const r = await client.request<{ AuthorizationToken: string }>('GetAuthorizationToken', { InstanceId: instanceId }, { method: 'POST', timeout: 10_000 });
  return r.AuthorizationToken;
}

/** Pushes a random two-layer image with kubelet-pull; its manifest digest. */
export async function pushRandomImage(puller: string, network: string[], image: string, password: string): Promise<string> {
  const r = await run(puller, ['push', '--image', image, ...network], { env: { PATH: process.env.PATH, REGISTRY_PASSWORD: password } });
  if (r.status !== 0) throw new Error(`push ${image}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout).digest;
}
