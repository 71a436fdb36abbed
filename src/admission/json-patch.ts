// RFC 6902 operations as the webhook emits them: only `add`, because it patches only what it needs.
export interface Operation {
  op: 'add';
  path: string;
  value: unknown;
}
