// Dispatches `switchyard <command>` to its implementation and maps failures to exit codes.

const usage = `Usage: switchyard <command> [options]
       switchyard --version

Commands:
  serve [--config <file-or-dir>] [--port N] [--admin-port N] [--host H]
                              Serve traffic with the given policies (env: SWITCHYARD_CONFIG, SWITCHYARD_PORT,
                              SWITCHYARD_ADMIN_PORT, SWITCHYARD_HOST). SIGHUP reloads, SIGTERM drains.
  validate <file-or-dir>...   Check policies; lists every problem and exits 1 if any.
  demo                        Start two sample Iris model servers and Switchyard in front of them; prints an admin
                              token, the status page (/ui) and the commands that steer it.
  status [route] [--watch] [--interval S]
                              Show live splits, flag freshness, phase and pause/rollback state (admin API);
                              --watch redraws every S seconds (default 2) until Ctrl-C.
  set <route> <challenger> <percent> [--mode canary|ab|shadow]
                              Change a split: written to Unleash for flag-driven routes, else a local override.
  pause <route>               Hold the route's progressive rollout at its current step.
  resume <route>              Clear a pause and a rollback.
  rollback <route>            Send all traffic to the champion now; held (also across restarts) until resume.
  approve <route> [--step N|promote] [--note T]
                              Let a rollout through the approval gate it waits at (phase awaiting_approval).
  promote <route> [--note T]  Serve the canary or ab challenger 100 % now (skips the remaining steps and gates).
  wait <route> --for promoted|rolled-back|awaiting-approval|step=N [--timeout 10m]
                              Wait for an outcome; exit 0 reached, 1 another outcome came first, 2 timeout, 3 error.
  events [--after ID] [--route R] [--type A[,B]] [--since 15m] [--follow]
                              The audit trail (fleet-wide with Redis): who changed which route, when, and why.
  analysis <route>            Guardrails per metric: n per arm, estimate, always-valid CI and p, decision and why;
                              Redis coordination, the shadow gate of shadow challengers, the A/B winner of ab ones.
                              status/set/pause/resume/rollback/approve/promote/wait/events/analysis take --admin-url (SWITCHYARD_ADMIN_URL, default
                              http://127.0.0.1:9090), --token (SWITCHYARD_ADMIN_TOKEN) and --json.
  report <file-or-dir>... [--json]
                              Offline report over prediction logs: agreement, McNemar on labelled pairs, score and
                              latency tests (\`analyze\` is a deprecated name for it; \`analysis\` is the live one).
  simulate <scenario.json> [--json] [--replicates N] [--workers N]
                              Run the policy's real controller and guardrails over synthetic traffic (seeded replicates
                              on a virtual clock): how often it promotes or rolls back, how long it takes, and why.
  backtest --config <policy> <pair-logs>... [--route r] [--json]
                              Replay recorded served and pair records through the policy's controller: when it would
                              have rolled back, advanced a step or promoted, with the evidence.

Run \`switchyard <command> --help\` for a command's options.`;

/**
 * Runs the CLI and returns the process exit code. Commands are imported on demand: the admin commands then start in
 * about 0.3 s instead of 0.8 s, because they do not load the router (fastify, undici pools, unleash-client).
 */
export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).serveCommand(rest);
    case 'validate':
      return (await import('./validate.js')).validateCommand(rest);
    case 'demo':
      return (await import('./demo.js')).demoCommand(rest);
    case 'status':
      return (await import('./status.js')).statusCommand(rest);
    case 'set':
      return (await import('./set.js')).setCommand(rest);
    case 'pause':
      return (await import('./pause.js')).pauseCommand(rest);
    case 'resume':
      return (await import('./resume.js')).resumeCommand(rest);
    case 'rollback':
      return (await import('./control.js')).rollbackCommand(rest);
    case 'analysis':
      return (await import('./control.js')).analysisCommand(rest);
    case 'events':
      return (await import('./events.js')).eventsCommand(rest);
    case 'approve':
      return (await import('./gates.js')).approveCommand(rest);
    case 'promote':
      return (await import('./gates.js')).promoteCommand(rest);
    case 'wait':
      return (await import('./wait.js')).waitCommand(rest);
    case 'report':
      return (await import('./report.js')).reportCommand(rest);
    case 'analyze':
      console.error('switchyard analyze is deprecated: use `switchyard report` (same arguments); `switchyard analysis <route>` is the live guardrail view');
      return (await import('./report.js')).reportCommand(rest);
    case 'simulate':
      return (await import('./simulate.js')).simulateCommand(rest);
    case 'backtest':
      return (await import('./backtest.js')).backtestCommand(rest);
    case '--version':
    case '-V':
    case 'version':
      console.log(`switchyard ${(await import('../version.js')).version}`);
      return 0;
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
