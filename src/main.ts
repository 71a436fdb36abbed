// Entry point of the server (`node dist/src/main.js`, the image's command): answers --help and --version, or
// serves until SIGTERM/SIGINT. The logic stays importable in server-main.ts.
import { commandLine, startServer, startupFailure } from './server-main.js';
import { exitOnSignals } from './shutdown.js';

const answered = commandLine(process.argv.slice(2));
if (answered) {
  if (answered.stdout) process.stdout.write(answered.stdout);
  if (answered.stderr) process.stderr.write(answered.stderr);
  process.exitCode = answered.exitCode;
} else {
  startServer(process.env)
    .then((s) => exitOnSignals({ app: s.app, closer: s.closer, log: s.app.log, stopRest: s.stopRest }))
    .catch((e: unknown) => {
      console.error(startupFailure(e));
      process.exit(1);
    });
}
