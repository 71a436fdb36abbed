// Standalone mode's cloud (src/standalone/cloud.ts): the environment's or the file's endpoints when any is set,
// otherwise the bundled emulator on 127.0.0.1 with its demo user as the identity.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BundledEmulator, StandaloneCloud } from '../../src/standalone/cloud.js';

const EMULATOR = '../../emulator/index.js';
let cloud: StandaloneCloud | undefined;

afterEach(async () => {
  await cloud?.emulator?.close();
  cloud = undefined;
  vi.doUnmock(EMULATOR);
  vi.resetModules();
});

const load = async () => (await import('../../src/standalone/cloud.js')).standaloneCloud;

describe('standaloneCloud: endpoints configured', () => {
  it.each<[string, NodeJS.ProcessEnv, Record<string, unknown>, string, string]>([
    ['ALIBABA_CLOUD_STS_ENDPOINT', { ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts/' }, {}, 'http://127.0.0.1:9/sts', 'https://cr.cn-beijing.aliyuncs.com'],
    ['ALIBABA_CLOUD_CR_ENDPOINT', { ALIBABA_CLOUD_CR_ENDPOINT: 'http://127.0.0.1:9/cr/{region}' }, {}, 'https://sts.aliyuncs.com', 'http://127.0.0.1:9/cr/cn-beijing'],
    ['the file’s sts', {}, { sts: 'https://sts.example.com' }, 'https://sts.example.com', 'https://cr.cn-beijing.aliyuncs.com'],
    ['the file’s cr', {}, { cr: { 'cn-beijing': 'https://cr.example.com' } }, 'https://sts.aliyuncs.com', 'https://cr.example.com'],
  ])('%s: those endpoints, the identity from the environment, no emulator', async (_, env, file, sts, cr) => {
    const standaloneCloud = await load();
    cloud = await standaloneCloud({ ...env, ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-test', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'secret' }, file);
    expect(Object.keys(cloud).sort()).toEqual(['endpoints', 'identity']);
    expect(cloud.endpoints.sts).toBe(sts);
    expect(cloud.endpoints.ram).toBe('https://ram.aliyuncs.com');
    expect(cloud.endpoints.cr('cn-beijing')).toBe(cr);
    expect(cloud.identity.source).toBe('env (AccessKey)');
  });

  it('without an AccessKey in the environment: the ECS RAM role', async () => {
    const standaloneCloud = await load();
    cloud = await standaloneCloud({ ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts' });
    expect(cloud.identity.source).toBe('ecs-ram-role');
  });

  it('a bad endpoint is refused as endpointsFromEnv refuses it', async () => {
    const standaloneCloud = await load();
    await expect(standaloneCloud({ ALIBABA_CLOUD_STS_ENDPOINT: 'sts.example.com' })).rejects.toThrow(
      new Error('ALIBABA_CLOUD_STS_ENDPOINT must be a full URL with scheme (https://...), got "sts.example.com"'),
    );
  });
});

describe('standaloneCloud: the bundled emulator', () => {
  it('starts the real emulator on 127.0.0.1 (EMULATOR_PORT) and points every endpoint at it', async () => {
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as { port: number }).port;
    await new Promise((r) => free.close(r));
    const standaloneCloud = await load();
    cloud = await standaloneCloud({ EMULATOR_PORT: String(port) });
    const emulator = cloud.emulator!;
    expect(emulator.url).toBe(`http://127.0.0.1:${port}`);
    expect(cloud.endpoints.sts).toBe(`http://127.0.0.1:${port}/sts`);
    expect(cloud.endpoints.ram).toBe(emulator.ramEndpoint);
    expect(cloud.endpoints.cr('cn-hangzhou')).toBe(emulator.crEndpoint('cn-hangzhou'));
    expect(cloud.endpoints.cr('cn-hangzhou')).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/`));
    expect(cloud.identity.source).toBe('static:emulator demo user');
    const creds = await cloud.identity.credentials();
    expect(creds.accessKeyId).toMatch(/^LTAI5t[A-Za-z0-9]{18}$/);
    // The STS endpoint is the emulator's (a call without an action is refused as Alibaba Cloud refuses it); the
    // demo key signing a whole review is test/server-main/start.test.ts's.
    const r = await fetch(cloud.endpoints.sts);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { Code: string }).Code).toBe('MissingAction');
  });

  describe('with a stand-in emulator module', () => {
    const started: Array<{ world: unknown; host: string; port: number }> = [];
    const fake = (o: { world: unknown; host: string; port: number }): BundledEmulator => ({
      url: `http://${o.host}:${o.port}`,
      stsEndpoint: 'http://emulator/sts',
      ramEndpoint: 'http://emulator/ram',
      crEndpoint: (region) => `http://emulator/cr/${region}`,
      close: async () => undefined,
    });
    const world = { demo: { accessKeyId: 'LTAIdemo', accessKeySecret: 'demo-secret' } };

    it.each<[NodeJS.ProcessEnv, number]>([
      [{}, 0],
      [{ EMULATOR_PORT: '18080' }, 18080],
    ])('%j: started with the demo world on 127.0.0.1 port %d; the demo user signs', async (env, port) => {
      started.length = 0;
      vi.doMock(EMULATOR, () => ({
        demoState: () => world,
        startEmulator: async (o: { world: unknown; host: string; port: number }) => (started.push(o), fake(o)),
      }));
      const standaloneCloud = await load();
      cloud = await standaloneCloud(env, {});
      expect(started).toEqual([{ world, host: '127.0.0.1', port }]);
      expect(cloud.emulator?.url).toBe(`http://127.0.0.1:${port}`);
      expect(cloud.endpoints.sts).toBe('http://emulator/sts');
      expect(cloud.endpoints.ram).toBe('http://emulator/ram');
      expect(cloud.endpoints.cr('cn-shanghai')).toBe('http://emulator/cr/cn-shanghai');
      expect(cloud.identity.source).toBe('static:emulator demo user');
      expect(await cloud.identity.credentials()).toEqual({ accessKeyId: 'LTAIdemo', accessKeySecret: 'demo-secret' });
    });

    it('no emulator module (the image): says what to set instead, with the loader’s error', async () => {
      vi.doMock(EMULATOR, () => {
        throw new Error('Cannot find module');
      });
      const standaloneCloud = await load();
      // vitest reports a failing module factory as its own Error (no code): the message carries its text.
      await expect(standaloneCloud({})).rejects.toThrow(
        /^standalone mode needs the bundled emulator \(emulator\/ in the source tree, not in the image\) or ALIBABA_CLOUD_STS_ENDPOINT and ALIBABA_CLOUD_CR_ENDPOINT: Error: \[vitest\] There was an error when mocking a module/,
      );
    });
  });
});
