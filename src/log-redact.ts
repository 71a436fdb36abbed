// Secret-bearing field names, redacted by the logger itself so that no log line depends on care at the call site.
const SECRET_FIELDS = [
  'AccessKeySecret',
  'accessKeySecret',
  'SecurityToken',
  'securityToken',
  'AuthorizationToken',
  'authorizationToken',
  'password',
  'auth',
  'token',
  'Signature',
  '.dockerconfigjson',
];

/** pino redact paths: each field at the top level and up to two levels down. */
export const LOG_REDACT_PATHS = SECRET_FIELDS.flatMap((f) => {
  const key = /^[A-Za-z_$][\w$]*$/.test(f) ? f : `["${f}"]`;
  const join = (prefix: string) => (key.startsWith('[') ? `${prefix}${key}` : `${prefix}.${key}`);
  return [key.startsWith('[') ? key : key, join('*'), join('*.*')];
});
