// A logger for tests that keeps every call, in order, in the array `into()` returns at the time of the call (so a
// test file can start each test with a fresh array).
export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

export function loggerInto(into: () => LogRecord[]) {
  const at = (level: LogRecord['level']) => (obj: object, msg?: string) => void into().push({ level, obj: obj as Record<string, unknown>, msg });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
