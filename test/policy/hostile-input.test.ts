// Hostile input: property-based tests over annotations, objects and image references, and raw bodies over
// HTTPS. The webhook must always answer well-formed JSON in time and never echo input unescaped.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAcrAnnotations, LIMITS } from '../../src/acr/annotations.js';
import { parseAcrHost, registryHost } from '../../src/acr/registry-hosts.js';
import { planAdmission, servingRules } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { parseConfig } from '../../src/config/config.js';
import { buildServer } from '../../src/server.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';
import { fixture } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';

// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let rules!: ReturnType<typeof servingRules>;
beforeEach(() => {
  rules = servingRules(
    parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-abc', domains: ['registry.example.com'] }] }, { ownNamespace: 'acr-pull-webhook' }),
    'acr-pull-webhook',
  );
});
const KEYS = ['k8s.aliyun.com/acr-instance-ids', 'k8s.aliyun.com/acr-instance-id', 'k8s.aliyun.com/acr-service-arns', 'k8s.aliyun.com/acr-user-arns', 'k8s.aliyun.com/acr-x'];
/** Messages may only hold printable ASCII: control, bidi and other characters arrive \u-escaped. */
const SAFE = /^[\x20-\x7e]*$/;

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
  fc.constantFrom('\u202e', '\u0000', '\n\r', '\u001b[31m', 'cri-abc\u0000', ' , , ', 'acs:ram::1:role/x\u200b'),
  fc.array(fc.constantFrom('cri-a', 'cn-beijing:cri-b', ' ', ',', ':', 'acs:ram::123:role/r', '\u00e9'), { maxLength: 60 }).map((a) => a.join('')),
);
const annotationValue = fc.oneof(hostileString, fc.anything({ maxDepth: 3 }));

describe('annotations and objects (properties)', () => {
  it('parseAcrAnnotations never throws and every message is bounded, printable ASCII', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 40 })), annotationValue, { maxKeys: 8 }), (ann) => {
        const r = parseAcrAnnotations(ann);
        expect(['none', 'ok', 'invalid']).toContain(r.kind);
        if (r.kind === 'invalid') {
          expect(r.message.length).toBeLessThan(700);
          expect(r.message).toMatch(SAFE);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('planAdmission answers any object shape without throwing', () => {
    const base = fixture('pod-cross-account-chain');
    fc.assert(
      fc.property(
        fc.anything({ maxDepth: 4 }),
        fc.dictionary(fc.constantFrom(...KEYS), hostileString, { maxKeys: 4 }),
        fc.array(fc.oneof(hostileString, fc.constant('myreg-registry.cn-hangzhou.cr.aliyuncs.com/a/b:1')), { maxLength: 5 }),
        (spec, annotations, images) => {
          for (const object of [spec, { metadata: { annotations }, spec }, { metadata: { annotations }, spec: { containers: images.map((image) => ({ image })) } }]) {
            const req = parseAdmissionReview({ ...base, request: { ...base.request, object } });
            const plan = planAdmission(req, rules);
            expect(['allow', 'deny', 'mutate']).toContain(plan.action);
            if (plan.action === 'deny') expect(plan.message).toMatch(SAFE);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('image references of any shape classify quickly', () => {
    fc.assert(
      fc.property(hostileString, (image) => {
        const host = registryHost(image);
        expect(typeof host).toBe('string');
        parseAcrHost(host);
      }),
      { numRuns: 3000 },
    );
    const t0 = performance.now();
    parseAcrHost(`${'a-'.repeat(50_000)}registry.cn-hangzhou.cr.aliyuncs.com`);
    parseAcrHost(`registry${'-vpc'.repeat(50_000)}.cn-hangzhou.aliyuncs.com`);
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('limits list sizes and lengths with clear denials', () => {
    const many = Array.from({ length: 1000 }, (_, i) => `cri-a${i}`).join(',');
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/acr-instance-ids': many })).toEqual({
      kind: 'invalid',
      message: `k8s.aliyun.com/acr-instance-ids is ${many.length} characters long; the limit is ${LIMITS.valueLength}`,
    });
    const items = Array.from({ length: 40 }, () => 'cri-a').join(',');
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/acr-instance-ids': items })).toEqual({
      kind: 'invalid',
      message: 'k8s.aliyun.com/acr-instance-ids lists 40 items; the limit is 32',
    });
  });
});

describe('raw bodies over HTTPS', () => {
  let app: FastifyInstance;
  let url: string;
  let ca: Buffer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hostile-'));
    const tls = ensureSelfSignedCert(dir);
    ca = readFileSync(tls.certFile);
    app = buildServer({ rules: () => rules, secrets: { ensure: async () => 'cached', ready: () => true }, tls, logLevel: 'silent' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const a = app.server.address();
    url = `https://localhost:${typeof a === 'object' && a ? a.port : 0}/mutate?timeout=2s`;
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const base = () => fixture('pod-cross-account-chain');
  const bodies: [string, () => string][] = [
    ['deeply nested JSON', () => `{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`],
    // Built as text: JSON.stringify itself would overflow the test's stack on this depth.
    ['deeply nested object in request', () => JSON.stringify({ ...base(), request: { ...base().request, object: 'NESTED' } }).replace('"NESTED"', `${'{"metadata":'.repeat(100_000)}1${'}'.repeat(100_000)}`)],
    ['a 1 MiB annotation', () => {
      const d = base();
      d.request.object.metadata.annotations['k8s.aliyun.com/acr-service-arns'] = 'x'.repeat(1 << 20);
      return JSON.stringify(d);
    }],
    ['10,000 annotation items', () => {
      const d = base();
      d.request.object.metadata.annotations['k8s.aliyun.com/acr-instance-ids'] = Array.from({ length: 10_000 }, () => 'cri-a').join(',');
      return JSON.stringify(d);
    }],
    ['10,000 containers', () => {
      const d = base();
      d.request.object.spec.containers = Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, image: `h${i}.example.com/a:1` }));
      return JSON.stringify(d);
    }],
    ['prototype poisoning', () => JSON.stringify(base()).replace('{', '{"__proto__":{"polluted":true},')],
    ['control characters everywhere', () => {
      const d = base();
      d.request.object.metadata.annotations['k8s.aliyun.com/acr-instance-ids'] = '\u001b[2J\u202ecri-\u0000';
      return JSON.stringify(d);
    }],
    ['a JSON string', () => '"AdmissionReview"'],
    ['null', () => 'null'],
    ['an array', () => '[]'],
    ['uid of the wrong type', () => JSON.stringify({ ...base(), request: { ...base().request, uid: 42 } })],
  ];

  it.each(bodies)('%s: well-formed JSON answer within the deadline', async (_name, make) => {
    const t0 = Date.now();
    const res = await httpsRequest(url, { body: make(), ca, timeoutMs: 5000 });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect([200, 400, 413]).toContain(res.status);
    expect(res.json).toBeDefined();
    if (res.status === 200) {
      expect(res.json.kind).toBe('AdmissionReview');
      if (res.json.response.status) expect(res.json.response.status.message).toMatch(SAFE);
    } else {
      expect(typeof res.json.message).toBe('string');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('random bodies always get JSON back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json({ maxDepth: 6 }), fc.string({ maxLength: 200 })), async (body) => {
        const res = await httpsRequest(url, { body, ca, timeoutMs: 5000 });
        expect([200, 400]).toContain(res.status);
        expect(res.json).toBeDefined();
      }),
      { numRuns: 150 },
    );
  });
});
