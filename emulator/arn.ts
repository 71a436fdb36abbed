// ARN forms the emulator accepts. RAM compares role names case-insensitively, so comparisons go
// through the normalized (lower-case name) form.

const ROLE_ARN = /^acs:ram::(\d{1,32}):role\/([A-Za-z0-9.-]{1,64})$/;
const OIDC_PROVIDER_ARN = /^acs:ram::(\d{1,32}):oidc-provider\/([A-Za-z0-9._-]{1,128})$/;

export interface ParsedArn {
  accountId: string;
  name: string;
}

export function parseRoleArn(arn: string): ParsedArn | undefined {
  const m = ROLE_ARN.exec(arn);
  return m ? { accountId: m[1]!, name: m[2]! } : undefined;
}

export function parseOidcProviderArn(arn: string): ParsedArn | undefined {
  const m = OIDC_PROVIDER_ARN.exec(arn);
  return m ? { accountId: m[1]!, name: m[2]! } : undefined;
}

export function roleArn(accountId: string, name: string): string {
  return `acs:ram::${accountId}:role/${name}`;
}

export function oidcProviderArn(accountId: string, name: string): string {
  return `acs:ram::${accountId}:oidc-provider/${name}`;
}

/** Same account and case-insensitively equal name; false when either ARN is malformed. */
export function sameRole(a: string, b: string): boolean {
  const x = parseRoleArn(a);
  const y = parseRoleArn(b);
  return !!x && !!y && x.accountId === y.accountId && x.name.toLowerCase() === y.name.toLowerCase();
}

export function sameOidcProvider(a: string, b: string): boolean {
  const x = parseOidcProviderArn(a);
  const y = parseOidcProviderArn(b);
  return !!x && !!y && x.accountId === y.accountId && x.name.toLowerCase() === y.name.toLowerCase();
}
