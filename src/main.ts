// Entry point of the server (`node dist/src/main.js`, the image's command): answers --help and --version, or
// serves until SIGTERM/SIGINT. What it does, importable and tested in-process: server-entry.ts.
import { runMain } from './server-entry.js';

void runMain();
