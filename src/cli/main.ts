// Dispatches `switchyard <command>` to its implementation and maps failures to exit codes.
import { serveCommand } from './serve.js';
import { validateCommand } from './validate.js';
import { demoCommand } from './demo.js';

const usage = `Usage: switchyard <command> [options]

Commands:
  serve [--config <file-or-dir>] [--port N] [--admin-port N] [--host H]
                              Serve traffic with the given policies (env: SWITCHYARD_CONFIG, SWITCHYARD_PORT,
                              SWITCHYARD_ADMIN_PORT, SWITCHYARD_HOST). SIGHUP reloads, SIGTERM drains.
  validate <file-or-dir>...   Check policies; lists every problem and exits 1 if any.
  demo                        Start two sample Iris model servers and Switchyard in front of them.

Run \`switchyard <command> --help\` for a command's options.`;

/** Runs the CLI and returns the process exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'validate':
      return validateCommand(rest);
    case 'demo':
      return demoCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(usage);
      return command === undefined ? 2 : 0;
    default:
      console.error(`switchyard: unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}
