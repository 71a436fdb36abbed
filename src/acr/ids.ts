// The shapes of Alibaba Cloud identifiers, shared by the annotation grammar and the configuration file.
/** Region IDs: cn-beijing, ap-southeast-1, cn-shanghai-finance-1, Apsara Stack's cn-qingdao-env17-d01. */
export const REGION = /^[a-z]{2,8}(?:-[a-z0-9]{1,20}){1,4}$/;
/** ACR Enterprise Edition instance IDs: cri- and lower-case alphanumerics (no official regex is published). */
export const INSTANCE_ID = /^cri-[a-z0-9]{1,60}$/;
/** RAM role ARNs: acs:ram::<account id>:role/<name>, the name 1-64 of letters, digits, "." and "-". */
export const ROLE_ARN = /^acs:ram::(\d{1,20}):role\/([A-Za-z0-9.-]{1,64})$/;
/** RAM OIDC identity providers (RRSA): acs:ram::<account id>:oidc-provider/<name>. */
export const OIDC_PROVIDER_ARN = /^acs:ram::\d{1,20}:oidc-provider\/[A-Za-z0-9._-]{1,128}$/;
/** Apsara Stack has one ACR instance per deployment, addressed as `default` (seed 001, "Content trust"). */
export const APSARA_INSTANCE_ID = 'default';
