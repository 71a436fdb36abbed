// `review -f -` reads standard input, file descriptor 0, with readFileSync. In-process the test's own stdin is not
// ours to write, so node:fs is mocked: fd 0 gives the text (or the error) a test sets; paths read the real files.
// Also the read errors a root-run test cannot cause with real files (EACCES, EPERM, others).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main, type CliIo } from '../../src/cli.js';

const stdin = vi.hoisted(() => ({ text: '', error: undefined as (Error & { code?: string }) | undefined, reads: 0 }));

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((path: unknown, options: unknown) => {
    if (path !== 0) return (actual.readFileSync as (p: unknown, o: unknown) => unknown)(path, options);
    stdin.reads++;
    if (stdin.error) throw stdin.error;
    return stdin.text;
  }) as typeof actual.readFileSync;
  return { ...actual, readFileSync, default: { ...actual, readFileSync } };
});

function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = main(argv, io);
  return { code, out, err };
}

function errno(code: string | undefined, message: string): Error & { code?: string } {
  const e: Error & { code?: string } = new Error(message);
  if (code !== undefined) e.code = code;
  return e;
}

beforeEach(() => {
  stdin.text = '';
  stdin.error = undefined;
  stdin.reads = 0;
  vi.stubEnv('ALIBABA_CLOUD_REGION_ID', undefined);
  vi.stubEnv('POD_NAMESPACE', undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('review -f -', () => {
  it('reviews the documents on standard input, named "-" in the report', () => {
    stdin.text = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-stdin}\n';
    expect(run('review', '-f', '-', '-o', 'json')).toEqual({
      code: 0,
      out: [
        `[
  {
    "source": "-#1",
    "object": "ConfigMap default/from-stdin",
    "allowed": true,
    "message": "unchanged (unhandled-kind)",
    "warnings": [],
    "patch": []
  }
]`,
      ],
      err: [],
    });
    expect(stdin.reads).toBe(1);
  });

  it('reads files and standard input together', () => {
    stdin.text = '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "piped"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}';
    expect(run('review', '-f', 'test/fixtures/cli/denied.yaml', '-f', '-')).toEqual({
      code: 1,
      out: [
        "Pod default/typo: DENIED: k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns: the user role is assumed with the service role's credentials, so add the RAM role of the workload's account that the user role trusts",
        'Pod default/piped: ALLOWED: unchanged (no-annotation)',
      ],
      err: [],
    });
    expect(stdin.reads).toBe(1);
  });

  it('an empty standard input is "(standard input)" in the message', () => {
    expect(run('review', '-f', '-')).toEqual({ code: 2, out: [], err: ['acr-pull-webhook review: (standard input): no documents found'] });
  });

  it.each([
    ['EACCES', 'permission denied'],
    ['EPERM', 'permission denied'],
    ['ENOENT', 'no such file'],
    ['EISDIR', 'is a directory: give each file with its own -f (-f dir/a.yaml -f dir/b.yaml)'],
    ['EAGAIN', 'cannot be read (EAGAIN)'],
    ['EIO', 'cannot be read (EIO)'],
  ])('a read failing with %s: %s', (code, message) => {
    stdin.error = errno(code, `${code}: read failed`);
    expect(run('review', '-f', '-')).toEqual({ code: 2, out: [], err: [`acr-pull-webhook review: (standard input): ${message}`] });
  });

  it('a read failing without an error code gives the error\'s message', () => {
    stdin.error = errno(undefined, 'stream closed');
    expect(run('review', '-f', '-')).toEqual({ code: 2, out: [], err: ['acr-pull-webhook review: (standard input): cannot be read (stream closed)'] });
  });

  it('a failure that is not the input\'s (the read giving no text) is thrown, not reported as unreadable input', () => {
    stdin.text = 42 as unknown as string;
    const err: string[] = [];
    expect(() => main(['review', '-f', '-'], { out: () => {}, err: (l) => err.push(l) })).toThrow(new TypeError('source is not a string'));
    expect(err).toEqual([]);
  });
});
