// Lookups over the world. Linear scans on purpose: worlds are tiny and tests may mutate them at any time.
import { parseOidcProviderArn, parseRoleArn, roleArn } from './arn.js';
import type { AccessKeySpec, AccountSpec, InstanceSpec, OidcProviderSpec, RoleSpec, UserSpec, WorldSpec } from './model.js';
import { checkJwks } from './oidc.js';

export type KeyOwner =
  | { kind: 'user'; account: AccountSpec; user: UserSpec; key: AccessKeySpec }
  | { kind: 'root'; account: AccountSpec; key: AccessKeySpec };

export function findAccessKey(world: WorldSpec, accessKeyId: string): KeyOwner | undefined {
  for (const account of world.accounts) {
    const root = account.rootAccessKeys?.find((k) => k.id === accessKeyId);
    if (root) return { kind: 'root', account, key: root };
    for (const user of account.users ?? []) {
      const key = user.accessKeys.find((k) => k.id === accessKeyId);
      if (key) return { kind: 'user', account, user, key };
    }
  }
  return undefined;
}

export function findAccount(world: WorldSpec, accountId: string): AccountSpec | undefined {
  return world.accounts.find((a) => a.id === accountId);
}

/** RAM matches role names case-insensitively. */
export function findRole(world: WorldSpec, arn: string): { account: AccountSpec; role: RoleSpec } | undefined {
  const parsed = parseRoleArn(arn);
  if (!parsed) return undefined;
  const account = findAccount(world, parsed.accountId);
  const role = account?.roles?.find((r) => r.name.toLowerCase() === parsed.name.toLowerCase());
  return account && role ? { account, role } : undefined;
}

export function findOidcProvider(world: WorldSpec, arn: string): OidcProviderSpec | undefined {
  const parsed = parseOidcProviderArn(arn);
  if (!parsed) return undefined;
  return findAccount(world, parsed.accountId)?.oidcProviders?.find(
    (p) => p.name.toLowerCase() === parsed.name.toLowerCase(),
  );
}

export function findInstance(world: WorldSpec, instanceId: string): InstanceSpec | undefined {
  return world.instances?.find((i) => i.id === instanceId);
}

export function hasPersonalRegistry(world: WorldSpec, accountId: string, region: string): boolean {
  return (world.personalRegistries ?? []).some((p) => p.accountId === accountId && p.region === region);
}

/** The role's ARN with its stored name. */
export function canonicalRoleArn(account: AccountSpec, role: RoleSpec): string {
  return roleArn(account.id, role.name);
}

/** Throws on a world that could not exist in RAM/CR, so test set-up mistakes surface early. */
export function validateWorld(world: WorldSpec): void {
  const fail = (msg: string): never => {
    throw new Error(`emulator world: ${msg}`);
  };
  const keyIds = new Set<string>();
  const checkKey = (k: AccessKeySpec, owner: string): void => {
    if (!k.id || !k.secret) fail(`${owner}: access key needs id and secret`);
    if (k.id.startsWith('STS.')) fail(`${owner}: permanent key ${k.id} must not start with STS.`);
    if (keyIds.has(k.id)) fail(`duplicate access key id ${k.id}`);
    keyIds.add(k.id);
  };
  const accountIds = new Set<string>();
  for (const account of world.accounts) {
    if (!/^\d{1,32}$/.test(account.id)) fail(`account id ${JSON.stringify(account.id)} is not numeric`);
    if (accountIds.has(account.id)) fail(`duplicate account ${account.id}`);
    accountIds.add(account.id);
    for (const k of account.rootAccessKeys ?? []) checkKey(k, `account ${account.id} root`);
    for (const user of account.users ?? []) for (const k of user.accessKeys) checkKey(k, `user ${user.name}`);
    const names = new Set<string>();
    for (const role of account.roles ?? []) {
      if (!/^[A-Za-z0-9.-]{1,64}$/.test(role.name)) fail(`role name ${JSON.stringify(role.name)} is invalid`);
      if (names.has(role.name.toLowerCase())) fail(`duplicate role ${role.name} in ${account.id}`);
      names.add(role.name.toLowerCase());
      const max = role.maxSessionDuration ?? 3600;
      if (!Number.isInteger(max) || max < 3600 || max > 43200) fail(`role ${role.name}: MaxSessionDuration ${max} not in 3600-43200`);
    }
    for (const p of account.oidcProviders ?? []) {
      try {
        checkJwks(p.jwks, `oidc provider ${p.name}`);
      } catch (e) {
        fail((e as Error).message);
      }
    }
  }
  const instanceIds = new Set<string>();
  for (const inst of world.instances ?? []) {
    // Apsara Stack's one instance per deployment is `default` (seed 001).
    if (!/^cri-[a-z0-9]+$/.test(inst.id) && inst.id !== 'default') fail(`instance id ${JSON.stringify(inst.id)} is not cri-... or default`);
    if (instanceIds.has(inst.id)) fail(`duplicate instance ${inst.id}`);
    instanceIds.add(inst.id);
    if (!accountIds.has(inst.accountId)) fail(`instance ${inst.id}: unknown account ${inst.accountId}`);
  }
}
