// Error responses as the POP gateway and the products shape them. Codes, statuses and messages follow
// the reference doc and published error-code tables; where a real value is undocumented, the choice is
// marked "undocumented" so nobody mistakes it for ground truth.

export type ErrorShape =
  /** Gateway/RAM style: {RequestId, HostId, Code, Message, Recommend}. */
  | 'gateway'
  /** CR Enterprise service-level style: {RequestId, Code, Message, IsSuccess:false}. */
  | 'service';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Readonly<Record<string, unknown>> = {},
    readonly shape: ErrorShape = 'gateway',
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorBody(err: ApiError, requestId: string, hostId: string, product: string): Record<string, unknown> {
  if (err.shape === 'service') {
    return { RequestId: requestId, Code: err.code, Message: err.message, IsSuccess: false, ...err.extra };
  }
  return {
    RequestId: requestId,
    HostId: hostId,
    Code: err.code,
    Message: err.message,
    Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(err.code)}&product=${product}&requestId=${requestId}`,
    ...err.extra,
  };
}

const RAM_DENIED = 'You are not authorized to do this action. You should be authorized by RAM.';

export const errors = {
  missingParameter: (name: string) => new ApiError(400, `Missing${name}`, `${name} is mandatory for this action.`),
  invalidParameter: (name: string) =>
    new ApiError(400, `InvalidParameter.${name}`, `The parameter ${name} is wrongly formed.`),
  apiNotFound: () =>
    new ApiError(404, 'InvalidAction.NotFound', 'Specified api is not found, please check your url and method.'),
  invalidVersion: () => new ApiError(400, 'InvalidVersion', 'Specified parameter Version is not valid.'),
  // The two below: code names follow the gateway's pattern; not found in a published table (undocumented).
  invalidSignatureMethod: () =>
    new ApiError(400, 'InvalidSignatureMethod', 'Specified signature method is not supported.'),
  invalidSignatureVersion: () =>
    new ApiError(400, 'InvalidSignatureVersion', 'Specified signature version is not supported.'),
  timestampFormat: () =>
    new ApiError(400, 'InvalidTimeStamp.Format', 'Specified time stamp or date value is not well formatted.'),
  timestampExpired: () =>
    new ApiError(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value is expired.'),
  nonceUsed: () => new ApiError(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.'),
  accessKeyNotFound: () => new ApiError(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.'),
  accessKeyInactive: () => new ApiError(400, 'InvalidAccessKeyId.Inactive', 'Specified access key is disabled.'),
  signatureMismatch: (stringToSign: string) =>
    new ApiError(
      400,
      'SignatureDoesNotMatch',
      `Specified signature is not matched with our calculation. server string to sign is:${stringToSign}`,
    ),
  missingSecurityToken: () => new ApiError(400, 'MissingSecurityToken', 'SecurityToken is mandatory for this action.'),
  securityTokenMalformed: () =>
    new ApiError(400, 'InvalidSecurityToken.Malformed', 'Specified SecurityToken is malformed.'),
  securityTokenMismatch: () =>
    new ApiError(400, 'InvalidSecurityToken.MismatchWithAccessKey', 'Specified SecurityToken mismatch with the AccessKey.'),
  securityTokenExpired: () => new ApiError(400, 'InvalidSecurityToken.Expired', 'Specified SecurityToken is expired.'),
  // ROA only; undocumented code names in the gateway's Missing*/Invalid* pattern.
  missingAuthorization: () => new ApiError(400, 'MissingAuthorization', 'Authorization is mandatory for this action.'),
  invalidAuthorization: () => new ApiError(400, 'InvalidAuthorization', 'Specified Authorization is not valid.'),
  contentMd5Mismatch: () =>
    new ApiError(400, 'InvalidContentMD5', 'Specified Content-MD5 does not match the request body.'),

  throttled: () => new ApiError(400, 'Throttling.User', 'Request was denied due to user flow control.'),
  internalError: () =>
    new ApiError(500, 'InternalError', 'The request processing has failed due to some unknown error, exception or failure.'),
  serviceUnavailable: () =>
    new ApiError(503, 'ServiceUnavailable', 'The request has failed due to a temporary failure of the server.'),

  /** RAM identity-policy denial. For CR the real code/status is undocumented; NoPermission/403 is RAM's usual. */
  ramDenied: (action: string, principalType: string, principalArn: string, accountId: string) =>
    new ApiError(403, 'NoPermission', RAM_DENIED, {
      AccessDeniedDetail: {
        AuthAction: action,
        AuthPrincipalType: principalType,
        AuthPrincipalDisplayName: principalArn,
        AuthPrincipalOwnerId: accountId,
        NoPermissionType: 'ImplicitDeny',
        PolicyType: 'AccountLevelIdentityBasedPolicy',
      },
    }),
  trustDenied: () => new ApiError(403, 'NoPermission', 'No permission perform sts:AssumeRole on this Role'),
  rootCannotAssume: () => new ApiError(403, 'NoPermission', 'Roles may not be assumed by root accounts.'),
  /** RAM GetRole on a name the caller's account does not have. */
  ramRoleNotFound: (name: string) => new ApiError(404, 'EntityNotExist.Role', `The role does not exist: ${name}.`),
  roleNotFound: (arn: string) => new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${arn}.`),
  durationOutOfRange: (maxSeconds: number) =>
    new ApiError(
      400,
      'InvalidParameter.DurationSeconds',
      `The Min/Max value of DurationSeconds is 15min/${maxSeconds / 3600}hr.`,
    ),
  policyGrammar: () =>
    new ApiError(400, 'InvalidParameter.PolicyGrammar', 'The parameter Policy has not passed grammar check.'),

  // AssumeRoleWithOIDC (STS error-code table: all 401).
  oidcProviderNotFound: () => new ApiError(401, 'AuthenticationFail.NoPermission', 'No such OIDC Provider registered.'),
  oidcNoPermission: () => new ApiError(401, 'AuthenticationFail.NoPermission', 'There is no permission'),
  oidcInvalid: (message: string) => new ApiError(401, 'AuthenticationFail.OIDCToken.Invalid', message),
  oidcExpired: () => new ApiError(401, 'AuthenticationFail.OIDCToken.Expired', 'This JsonWebToken is expired.'),
  oidcAudience: () => new ApiError(401, 'AuthenticationFail.OIDCToken.AudienceNotMatch', 'Invalid audience.'),
  /** Undocumented message: the code is the table's; the wording for a bad signature is chosen by analogy. */
  oidcSignature: () => new ApiError(401, 'AuthenticationFail.OIDCToken.Invalid', 'The signature of the Jwt is invalid.'),
  /** Undocumented: the table lists audience mismatch only; issuer mismatch is named by analogy. */
  oidcIssuer: () => new ApiError(401, 'AuthenticationFail.OIDCToken.IssuerNotMatch', 'Invalid issuer.'),

  // CR Enterprise service-level errors; the real service often answers these with HTTP 200.
  instanceNotExist: (status: number) =>
    new ApiError(status, 'INSTANCE_NOT_EXIST', 'instance not exist', {}, 'service'),
  paramInvalid: (name: string) => new ApiError(400, 'PARAM_INVALID', `parameter ${name} is invalid`, {}, 'service'),
  /** Personal Edition not set up for the account in that region (undocumented code). */
  personalUserNotExist: () => new ApiError(404, 'USER_NOT_EXIST', 'user not exist'),
};
