// Renders untrusted input for messages: escaped (no control, bidi or other non-ASCII characters reach a
// terminal or log unescaped) and bounded (a 1 MiB annotation must not become a 1 MiB denial message).
const MAX_QUOTED = 80;

export function quote(value: unknown, max = MAX_QUOTED): string {
  const text = typeof value === 'string' ? value : String(value);
  const cut = text.length > max ? text.slice(0, max) : text;
  // JSON.stringify escapes quotes, backslashes and C0 controls; everything outside printable ASCII is \u-escaped too.
  const escaped = JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return text.length > max ? `${escaped.slice(0, -1)}..." (${text.length} characters)` : escaped;
}
