#!/usr/bin/env node
// The installed `acr-pull-webhook` command. Always runs: reached through node_modules/.bin symlinks and npx,
// where process.argv[1] names the link, not this file. The logic stays importable in cli.ts.
import { main } from './cli.js';

// exitCode, not exit(): stdout reaching a pipe is flushed before the process ends.
process.exitCode = main(process.argv.slice(2));
