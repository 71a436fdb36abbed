// The generated matchCondition's exact text: what the leader writes into the default webhook's configuration (and
// what `kubectl get mutatingwebhookconfiguration -o yaml` shows, and what counts against the 32 KiB bound). Its
// meaning is checked with a CEL evaluator in match-conditions.test.ts; here, that only the parts the inputs call
// for are written, quoted and escaped as CEL wants.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { buildRegistryIndex } from '../../src/acr/served-registries.js';
import { parseConfig } from '../../src/config/config.js';

type MatchConditions = typeof import('../../src/admission/match-conditions.js');
let sendCondition: MatchConditions['sendCondition'];

beforeEach(async () => {
  // Loaded per test: the condition's name, its size bound and the quoting helpers are set when the module loads
  // (Stryker credits code run at load to the tests running then).
  vi.resetModules();
  ({ sendCondition } = await import('../../src/admission/match-conditions.js'));
});

const POD = "request.kind.group == '' && request.kind.kind == 'Pod'";
/** podServiceAccountName() in CEL. */
const POD_ACCOUNT =
  "(has(object.spec.serviceAccountName) && object.spec.serviceAccountName != '' ? object.spec.serviceAccountName : " +
  "(has(object.spec.serviceAccount) && object.spec.serviceAccount != '' ? object.spec.serviceAccount : 'default'))";
/** The three container lists of a Pod, each tested with `image` (an expression on `c.image`). */
const containers = (image: string) =>
  `(has(object.spec.initContainers) && object.spec.initContainers.exists(c, has(c.image) && ${image})) || ` +
  `(has(object.spec.containers) && object.spec.containers.exists(c, has(c.image) && ${image})) || ` +
  `(has(object.spec.ephemeralContainers) && object.spec.ephemeralContainers.exists(c, has(c.image) && ${image}))`;

describe('sendCondition, the text', () => {
  it('exact hosts only: a map look-up (sorted, no pattern); ServiceAccounts and the helper quoted, with the Pod\'s ServiceAccount spelled out', () => {
    const registries = buildRegistryIndex({
      configured: parseConfig({ registries: [{ instanceId: 'cri-x', region: 'cn-hangzhou', domains: ['registry.example.com', 'a.example.com:5000'] }] }, { ownNamespace: 'x' }).registries,
    });
    const condition = sendCondition({
      registries,
      annotatedServiceAccounts: ["team-a/it's", 'team-b/back\\slash'],
      helper: { namespaces: ['team-c'], serviceAccounts: ['deployer'] },
    });
    const hosts = "{'a.example.com:5000': true, 'registry.example.com': true}";
    const image = `(c.image.indexOf('/') > 0 && (c.image.substring(0, c.image.indexOf('/')).lowerAscii() in ${hosts}))`;
    const cached = `(i.indexOf('/') > 0 && (i.substring(0, i.indexOf('/')).lowerAscii() in ${hosts}))`;
    expect(condition).toEqual({
      name: 'needs-acr-pull-webhook',
      expression:
        `${POD} ? (has(object.spec) && (${containers(image)}) || ` +
        `(request.namespace + '/' + ${POD_ACCOUNT}) in {'team-a/it\\'s': true, 'team-b/back\\\\slash': true} || ` +
        `(request.namespace in {'team-c': true} && ${POD_ACCOUNT} in {'deployer': true})) : ` +
        `(!has(object.spec) || !has(object.spec.images) || object.spec.images.exists(i, ${cached}))`,
    });
  });

  it('discovery patterns only: one RE2 match with the region escaped, no map look-up', () => {
    const registries = buildRegistryIndex({ configured: [], discovery: { regions: ['cn-hangzhou'], personalEdition: false } });
    // In the CEL string each backslash is doubled: the regex reads \. and \- .
    const re = String.raw`'^([a-z0-9][a-z0-9-]*-registry(-vpc)?\\.cn\\-hangzhou\\.cr\\.aliyuncs\\.com)$'`;
    const image = `(c.image.indexOf('/') > 0 && (c.image.substring(0, c.image.indexOf('/')).lowerAscii().matches(${re})))`;
    const cached = `(i.indexOf('/') > 0 && (i.substring(0, i.indexOf('/')).lowerAscii().matches(${re})))`;
    expect(sendCondition({ registries, annotatedServiceAccounts: [] })).toEqual({
      name: 'needs-acr-pull-webhook',
      expression: `${POD} ? (has(object.spec) && (${containers(image)})) : (!has(object.spec) || !has(object.spec.images) || object.spec.images.exists(i, ${cached}))`,
    });
  });
});
