/** A plain JSON object (not null, not an array): what every field of an untrusted document must be checked for. */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
