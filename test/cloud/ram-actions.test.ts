// The README's RAM grant against the calls the code makes: a new cloud call without its RAM action in the docs
// fails here, not as a NoPermission for the first user who built a role from the README.
// Two views of "the calls the code makes", each guarding the other:
// - static: every CloudCaller.rpc/roa call site in src/ (the TypeScript compiler reads the action and API
//   version, literals or constants), so a call counts even before a test drives it;
// - observed: what reaches the emulator when the credential chain runs every kind of registry reference
//   (SCENARIOS: add one when a new code path calls something), which must be among the static ones (a call
//   that bypasses CloudCaller would otherwise go unseen).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Binding } from '../../src/acr/model.js';
import { CloudCaller } from '../../src/cloud/rpc.js';
import { staticIdentity } from '../../src/cloud/identity.js';
import { AcrTokenSource } from '../../src/cloud/token-source.js';
import { TrustExplainer } from '../../src/cloud/trust-explainer.js';
import { DenialError } from '../../src/pull-secrets/types.js';
import { demoState, makeOidcToken, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import type { WorkloadIdentity } from '../../src/cloud/token-source.js';

/** RAM service of each API version the code speaks. */
const SERVICE_OF_VERSION: Record<string, string> = { '2015-04-01': 'sts', '2015-05-01': 'ram', '2018-12-01': 'cr', '2016-06-07': 'cr' };
/** Not an API call of the webhook: the kubelet's pull with the token still needs it. */
const PULL = 'cr:PullRepository';

/** `cr:GetAuthorizationToken` from an API name such as `GetAuthorizationToken(Personal)`. */
const ramAction = (version: string, api: string) => `${SERVICE_OF_VERSION[version] ?? `unknown-version-${version}`}:${api.replace(/\(.*\)$/, '')}`;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every `<caller>.rpc(endpoint, version, creds, action, ...)` and `.roa(endpoint, version, creds, api, ...)` in src/. */
function staticCalls(): { action: string; at: string }[] {
  const files = sourceFiles('src');
  const program = ts.createProgram(files, { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const literal = (node: ts.Expression, what: string, at: string): string => {
    const type = checker.getTypeAtLocation(node);
    if (!type.isStringLiteral()) throw new Error(`${at}: the ${what} is not a string constant; write it as one so this test can see the call`);
    return type.value;
  };
  const calls: { action: string; at: string }[] = [];
  for (const sf of program.getSourceFiles()) {
    if (!files.some((f) => sf.fileName.endsWith(f))) continue;
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && ['rpc', 'roa'].includes(node.expression.name.text)) {
        const receiver = checker.getTypeAtLocation(node.expression.expression);
        if (receiver.getSymbol()?.getName() === 'CloudCaller') {
          const { line } = sf.getLineAndCharacterOfPosition(node.getStart());
          const at = `${sf.fileName.slice(sf.fileName.indexOf('src/'))}:${line + 1}`;
          const [, version, , api] = node.arguments;
          if (!version || !api) throw new Error(`${at}: unexpected call shape`);
          calls.push({ action: ramAction(literal(version, 'API version', at), literal(api, 'action', at)), at });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return calls;
}

/** The backticked `service:Action` names of the README's "RAM permissions" section. */
function documentedActions(): Set<string> {
  const readme = readFileSync('README.md', 'utf8');
  const start = readme.indexOf('\n### RAM permissions\n');
  expect(start, 'README.md has a "### RAM permissions" section').toBeGreaterThan(0);
  const end = readme.slice(start + 1).search(/\n#{2,3} /);
  const section = readme.slice(start, end < 0 ? undefined : start + 1 + end);
  return new Set([...section.matchAll(/`((?:sts|cr|ram):[A-Za-z]+)`/g)].map((m) => m[1]!));
}

let world: DemoWorld;
let emu: Emulator;
let caller: CloudCaller;
const calls = staticCalls();

const ECI_ONLY_ROLE = 'acs:ram::1234567890123456:role/eci-only';

beforeAll(async () => {
  world = demoState();
  // A role as ECI's documentation creates it (trusts only the ECI service), which the webhook may look at.
  world.accounts[0]!.roles!.push({ name: 'eci-only', trust: [{ service: 'eci.aliyuncs.com' }] });
  world.accounts[0]!.users![0]!.permissions = { ...world.accounts[0]!.users![0]!.permissions, assumeRole: '*', ramGetRole: '*' };
  emu = await startEmulator({ world });
  caller = new CloudCaller({ backoffMs: 20 });
});
afterAll(async () => {
  caller.close();
  await emu.close();
});

/**
 * One binding per kind of registry reference and chain, and per path that calls something (a refused service role
 * is explained with GetCallerIdentity and GetRole); extend when a code path calls something new.
 */
const SCENARIOS: Record<string, { binding: (w: DemoWorld) => Binding; workload?: (w: DemoWorld) => WorkloadIdentity; refused?: true }> = {
  'cross-account chain, instance by ID (domains listed)': {
    binding: (w) => ({
      chain: { serviceArn: w.demo.serviceRoleArn, userArn: w.demo.userRoleArn },
      registries: [{ kind: 'instance', instanceId: w.demo.beijingInstanceId, region: 'cn-beijing' }],
    }),
  },
  'instance found by its default domain': {
    binding: (w) => ({ chain: { serviceArn: w.demo.serviceRoleArn }, registries: [{ kind: 'instance-name', instanceName: 'demo', region: 'cn-hangzhou' }] }),
  },
  'Personal Edition': {
    binding: (w) => ({
      chain: { serviceArn: w.demo.serviceRoleArn },
      registries: [{ kind: 'personal', region: 'cn-hangzhou', domains: ['registry.cn-hangzhou.aliyuncs.com'] }],
    }),
  },
  'the credential provider\'s workload identity: the service hop with a ServiceAccount token': {
    binding: (w) => ({ chain: { serviceArn: w.demo.serviceRoleArn }, registries: [{ kind: 'instance', instanceId: w.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: ['registry.example.com'] }] }),
    workload: (w) => ({
      oidcProviderArn: w.demo.oidcProviderArn,
      token: makeOidcToken({ iss: w.demo.oidcIssuer, sub: w.demo.oidcSubject, aud: w.demo.oidcAudience, exp: Math.floor(Date.now() / 1000) + 600 }, w.demo.oidcSigningKey),
      issuer: w.demo.oidcIssuer,
      subject: w.demo.oidcSubject,
      audiences: [w.demo.oidcAudience],
      partition: `${w.demo.oidcIssuer}|${w.demo.oidcSubject}|uid`,
    }),
  },
  'a service role that trusts only ECI: the refusal is explained': {
    binding: () => ({ chain: { serviceArn: ECI_ONLY_ROLE }, registries: [{ kind: 'instance', instanceId: 'cri-demo0000000001', region: 'cn-hangzhou' }] }),
    refused: true,
  },
};

describe('RAM actions', () => {
  it('every cloud call site in src/ is found, with a constant action', () => {
    // The scanner sees the calls known when it was written (new ones only add to the set).
    expect([...new Set(calls.map((c) => c.action))]).toEqual(
      expect.arrayContaining(['sts:AssumeRole', 'cr:GetAuthorizationToken', 'cr:ListInstanceEndpoint', 'cr:GetInstanceVpcEndpoint', 'cr:ListInstance']),
    );
  });

  it('what the emulator sees across every kind of binding is among the call sites found', async () => {
    const identity = staticIdentity('test', { accessKeyId: world.demo.accessKeyId, accessKeySecret: world.demo.accessKeySecret });
    const explainer = new TrustExplainer({ identity, caller, stsEndpoint: emu.stsEndpoint, ramEndpoint: emu.ramEndpoint });
    const source = new AcrTokenSource({
      identity,
      endpoints: { sts: emu.stsEndpoint, cr: (r) => emu.crEndpoint(r) },
      caller,
      sessionDurationSeconds: 3600,
      refreshThresholdMs: 15 * 60_000,
      explainRefusal: (arn, action, budget) => explainer.explain(arn, action, budget),
    });
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      const outcome = await source.dockerAuths(scenario.binding(world), 'team-a', { deadline: Date.now() + 5000 }, scenario.workload?.(world)).then(
        () => 'served',
        (e: unknown) => (e instanceof DenialError ? 'refused' : Promise.reject(e)),
      );
      expect(outcome, name).toBe(scenario.refused ? 'refused' : 'served');
    }
    const observed = new Set(emu.calls.list().map((c) => `${c.product === 'cr-personal' ? 'cr' : c.product}:${c.action}`));
    const found = new Set(calls.map((c) => c.action));
    expect([...observed].filter((a) => !found.has(a))).toEqual([]);
    // And the scenarios reach every call site: a new call needs a scenario here.
    expect([...found].filter((a) => !observed.has(a))).toEqual([]);
  });

  it('the README lists exactly the actions the code calls, plus cr:PullRepository for the pull itself', () => {
    const needed = new Set([...calls.map((c) => c.action), PULL]);
    const documented = documentedActions();
    expect({ missing: [...needed].filter((a) => !documented.has(a)), extra: [...documented].filter((a) => !needed.has(a)) }).toEqual({ missing: [], extra: [] });
  });
});
