#!/usr/bin/env node
// The `switchyard` command: serve, validate, demo, and release-engineer commands over the admin API.
import { runCli } from './cli/main.js';

process.exitCode = await runCli(process.argv.slice(2));
