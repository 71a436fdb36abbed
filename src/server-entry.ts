// What the server's entry point (src/main.ts, `node dist/src/main.js`, the image's command) does, importable
// without running it: answers --help and --version, or starts the server and stops it on SIGTERM/SIGINT. The
// process (its arguments, environment, output, exit) and the two steps are passed in, the real ones by default.
import { commandLine, startServer, startupFailure } from './server-main.js';
import { exitOnSignals } from './shutdown.js';

/** The process as the entry uses it, and the two steps of serving. */
export interface EntryIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** The exit code once nothing is left to do (not exit(): stdout reaching a pipe is flushed first). */
  setExitCode(code: number): void;
  /** Ends the process now: after a failed start-up, what it began (timers, the emulator) would keep it alive. */
  exit(code: number): void;
  startServer: typeof startServer;
  exitOnSignals: typeof exitOnSignals;
}

/** The real process, startServer and exitOnSignals. */
export function processIO(): EntryIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    setExitCode: (code) => {
      process.exitCode = code;
    },
    exit: (code) => process.exit(code),
    startServer,
    exitOnSignals,
  };
}

/**
 * Runs the entry: `argv` are the arguments after node and the script. Resolves once it has answered, once the
 * server serves with the signal handlers installed, or once a failed start-up has been reported and exit(1) called.
 */
export async function runMain(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env, io: EntryIO = processIO()): Promise<void> {
  const answered = commandLine(argv);
  if (answered) {
    if (answered.stdout) io.stdout.write(answered.stdout);
    if (answered.stderr) io.stderr.write(answered.stderr);
    io.setExitCode(answered.exitCode);
    return;
  }
  try {
    const s = await io.startServer(env);
    io.exitOnSignals({ app: s.app, closer: s.closer, log: s.app.log, stopRest: s.stopRest });
  } catch (e) {
    io.stderr.write(`${startupFailure(e)}\n`);
    io.exit(1);
  }
}
