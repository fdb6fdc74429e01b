#!/usr/bin/env node
/**
 * `writ-node-runner`: the runner daemon, the pack checker, and the multipath watchdog.
 */
import { parseArgs } from 'node:util'
import { RUNNER_VERSION } from './version.js'

// Each command loads only what it uses, so the daemon's idle memory holds no watchdog or checker code.

const USAGE = `writ-node-runner ${RUNNER_VERSION}

usage:
  writ-node-runner [run] [--config FILE] [flags]   run the daemon
  writ-node-runner packs check <dir>...             validate pack folders
  writ-node-runner packs test <dir>... [--case NAME] run each pack's test/cases.yaml through a real runner
                                                    against private services (packs test --help)
  writ-node-runner watchdog multipath [flags]       run the multipath watchdog
  writ-node-runner --version

run flags (env fallback in brackets):
  --nats-url URL          [WRIT_NATS_URL]        default nats://127.0.0.1:4222
  --nats-creds FILE       [WRIT_NATS_CREDS]
  --nats-ca FILE          [WRIT_NATS_CA]         CA of the NATS servers' certificates: TLS only, verified against it
  --nats-tls-server-name NAME [WRIT_NATS_TLS_SERVER_NAME]  the name on the servers' certificate (they are reached by IP)
  --node-id ID            [WRIT_NODE_ID, NODE_ID, NOMAD_NODE_ID]   default: from the node name
  --node-name NAME        [WRIT_NODE_NAME, NOMAD_NODE_NAME]        default: hostname
  --packs DIR             [WRIT_PACKS, ":"-separated]  repeatable
  --trusted-keys FILE     [WRIT_TRUSTED_KEYS]    PEM file(s) of control-plane public keys; repeatable
  --journal FILE          [WRIT_JOURNAL]         default /var/lib/writ/runner-journal.jsonl
  --nomad-addr URL        [NOMAD_ADDR]           https://host:4646, http://host:4646 or unix:///…/api.sock (the Task API);
                                                 default http://127.0.0.1:4646, Nomad's own
  --nomad-token TOKEN     [NOMAD_TOKEN]          ACL token or workload identity
  --nomad-cacert FILE     [NOMAD_CACERT]         CA of the agent's certificate (https only; the TLS settings
                                                 are refused with http://, ignored with one warning on unix://)
  --nomad-client-cert FILE, --nomad-client-key FILE   [NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY]  for verify_https_client
  --nomad-tls-server-name NAME  [NOMAD_TLS_SERVER_NAME]  e.g. client.global.nomad when the address is an IP
  --nomad-data-dir DIR    [WRIT_NOMAD_DATA_DIR]  the Nomad client's data_dir on this host (list roots under
                                                 {{ runner.nomad_data_dir }}, e.g. storage.csi_volume_ls); default /opt/nomad/data
  --multipathd-socket S   [WRIT_MULTIPATHD_SOCKETS, ","-separated]  repeatable; default /run/multipathd.socket,
                                                 @/org/kernel/linux/storage/multipathd (@ = abstract)
  --docker-socket PATH    [WRIT_DOCKER_SOCKET]   default /var/run/docker.sock
  --kernel-log-file FILE  [WRIT_KERNEL_LOG_FILE] dmesg reads this file (lines as dmesg --raw prints them) instead of /dev/kmsg
  --inherit-env NAME      [WRIT_INHERIT_ENV, ","-separated]  repeatable; a variable of the runner's environment every
                                                 command gets (credentials packs read from the host: REDISCLI_AUTH,
                                                 PGPASSWORD, …); commands otherwise see only PATH, LANG and LC_ALL
  --approvers-registry FILE [WRIT_APPROVERS_REGISTRY]  the signed approver registry (writ approvers export):
                          the actions it gates then need passkey-signed approvals; reloaded when the file
                          changes, never replaced by an older one (the journal keeps the newest accepted)
  --approvers-key FILE    [WRIT_APPROVERS_KEYS]  PEM of the approvers public key that signs it; repeatable
  --heartbeat-interval-ms N, --drain-timeout-ms N, --max-concurrent-runs N, --log-level L, --allow-shell-packs,
  --approvers-reload-ms N
  --max-writ-lifetime-ms N   longest writ validity accepted (default 3600000); bounds the replay window
  --journal-rotate-entries N rotate the journal at N entries (default 100000); --journal-keep-rotated N (default 10)
`

export async function main(argv: string[]): Promise<number> {
  const [cmd, sub, ...rest] = argv
  if (cmd === '--version' || cmd === 'version') { process.stdout.write(`writ-node-runner ${RUNNER_VERSION}\n`); return 0 }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') { process.stdout.write(USAGE); return 0 }
  if (cmd === 'packs') {
    if (sub === 'test') {
      const { runPacksTest } = await import('./packs-test/packs-test-command.js')
      return runPacksTest(rest, process.argv.slice(1))
    }
    if (sub !== 'check') { process.stderr.write(`unknown packs command "${sub ?? ''}"\n${USAGE}`); return 2 }
    const { runPacksCheck } = await import('./packs-check.js')
    return runPacksCheck(rest)
  }
  if (cmd === 'watchdog') {
    if (sub !== 'multipath') { process.stderr.write(`unknown watchdog "${sub ?? ''}" (known: multipath)\n`); return 2 }
    const { runWatchdogCommand } = await import('./watchdog/watchdog-command.js')
    return runWatchdogCommand(rest)
  }
  const runArgs = cmd === 'run' ? argv.slice(1) : argv
  let flags: Record<string, string | string[] | boolean>
  try {
    const { values, positionals } = parseArgs({
      args: runArgs, allowPositionals: true, strict: true,
      options: {
        config: { type: 'string' }, 'nats-url': { type: 'string' }, 'nats-creds': { type: 'string' }, 'nats-ca': { type: 'string' }, 'nats-tls-server-name': { type: 'string' },
        'node-id': { type: 'string' }, 'node-name': { type: 'string' }, packs: { type: 'string', multiple: true },
        'trusted-keys': { type: 'string', multiple: true }, journal: { type: 'string' }, 'nomad-addr': { type: 'string' },
        'nomad-token': { type: 'string' }, 'nomad-cacert': { type: 'string' }, 'nomad-client-cert': { type: 'string' },
        'nomad-client-key': { type: 'string' }, 'nomad-tls-server-name': { type: 'string' }, 'nomad-data-dir': { type: 'string' }, 'multipathd-socket': { type: 'string', multiple: true },
        'docker-socket': { type: 'string' }, 'heartbeat-interval-ms': { type: 'string' },
        'drain-timeout-ms': { type: 'string' }, 'max-concurrent-runs': { type: 'string' }, 'log-level': { type: 'string' },
        'allow-shell-packs': { type: 'boolean' }, 'metrics-listen': { type: 'string' }, 'kernel-log-file': { type: 'string' }, 'max-writ-lifetime-ms': { type: 'string' },
        'journal-rotate-entries': { type: 'string' }, 'journal-keep-rotated': { type: 'string' },
        'approvers-registry': { type: 'string' }, 'approvers-key': { type: 'string', multiple: true }, 'approvers-reload-ms': { type: 'string' },
        'inherit-env': { type: 'string', multiple: true },
      },
    })
    if (positionals.length > 0) throw new Error(`unexpected argument "${positionals[0]}"`)
    flags = values as Record<string, string | string[] | boolean>
  } catch (e) {
    process.stderr.write(`writ-node-runner: ${(e as Error).message}\n\n${USAGE}`)
    return 2
  }
  const { loadRunnerConfig, RunnerConfigError } = await import('./runner-config.js')
  const { startNodeRunner } = await import('./node-runner.js')
  let config
  try { config = loadRunnerConfig(flags) } catch (e) {
    if (e instanceof RunnerConfigError) { process.stderr.write(`writ-node-runner: ${e.message}\n`); return 2 }
    throw e
  }
  let runner
  try { runner = await startNodeRunner(config) } catch (e) {
    // A registry that does not verify is a configuration fault: say which and stop.
    if ((e as Error).name === 'ApproverRegistryError') { process.stderr.write(`writ-node-runner: ${(e as Error).message}\n`); return 2 }
    throw e
  }
  // A rejection nothing handled (a library's internal promise, say) is reported and survived: a runner
  // that exits on it takes every node's remediation with it, and Nomad's restart policy soon fails the allocation.
  const survive = (reason: unknown): void => runner.internalError(reason, 'unhandled rejection')
  process.on('unhandledRejection', survive)
  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      process.stderr.write(`writ-node-runner: ${signal}: draining (${runner.inFlight()} run(s) in flight)\n`)
      void runner.drain().then(() => resolve(0), () => resolve(1))
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (e: unknown) => {
  process.stderr.write(`writ-node-runner: ${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
})
