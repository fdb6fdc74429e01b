/**
 * A self-contained control-plane setup for one test suite: a small pack with
 * actions of every risk, a signing key pair, principals with tokens, a policy,
 * and a validated Config pointing at the suite's NATS server.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateSigningKeyPair } from '@writ/packs/protocol'
import { buildApp, parseConfig, hashToken, type Config, type ConfigInput } from '@writ/control-plane'
import { startNatsServer, type NatsServerHandle } from './nats-server.js'

export interface CpFixture {
  dir: string
  packDir: string
  listRoot: string
  keyFile: string
  publicKeyFile: string
  tokens: { agent: string, agent2: string, operator: string, operator2: string, operator3: string, outsider: string, agentsOperator: string, limited: string }
  config: Config
  /** Writes a config file (YAML-compatible JSON) for a child process. */
  writeConfigFile(extra?: Partial<ConfigInput>): string
  cleanup(): void
}

const ACTIONS: Record<string, string> = {
  'echo.yaml': `schema_version: 1
id: testops.echo
title: Echo a message
kind: exec
risk: low
description: Prints the message it is given.
side_effects: [None.]
args:
  - name: message
    type: string
    required: true
    validation: { max_length: 200, pattern: "^[A-Za-z0-9 ._-]*$" }
execution:
  command: { binary: /bin/echo, argv: ["{{ args.message }}"] }
  timeout: 5s
`,
  'sleep.yaml': `schema_version: 1
id: testops.sleep
title: Sleep a while
kind: exec
risk: low
description: Sleeps, then prints done.
args:
  - name: seconds
    type: integer
    required: true
    validation: { min: 0, max: 30 }
execution:
  command: { binary: /bin/sleep, argv: ["{{ args.seconds }}"] }
  timeout: 2s
`,
  'restart.yaml': `schema_version: 1
id: testops.restart
title: Restart a service (pretend)
kind: exec
risk: high
description: Needs a person.
side_effects: [Restarts the service.]
args: []
execution:
  command: { binary: /bin/true, argv: [] }
  timeout: 5s
`,
  'deploy.yaml': `schema_version: 1
id: testops.deploy
title: Deploy a release (pretend)
kind: exec
risk: high
description: Needs two people.
side_effects: [Replaces the running release.]
args: []
execution:
  command: { binary: /bin/true, argv: [] }
  timeout: 5s
`,
  'wipe.yaml': `schema_version: 1
id: testops.wipe
title: Wipe (never allowed)
kind: exec
risk: critical
args: []
execution:
  command: { binary: /bin/true, argv: [] }
  timeout: 5s
`,
  'login.yaml': `schema_version: 1
id: testops.login
title: Log in to a service (pretend)
kind: exec
risk: low
description: Takes a password, which must never be shown back.
args:
  - name: user
    type: string
    required: true
    validation: { pattern: "^[a-z]{1,32}$" }
  - name: password
    type: string
    required: true
    sensitive: true
    validation: { pattern: "^[A-Za-z0-9]{8,64}$" }
  - name: attempts
    type: integer
    sensitive: true
    validation: { min: 1, max: 3 }
execution:
  command: { binary: /bin/true, argv: ["{{ args.user }}", "{{ args.password }}"] }
  timeout: 5s
`,
  'unlock.yaml': `schema_version: 1
id: testops.unlock
title: Unlock a vault with its pin (pretend)
kind: exec
risk: high
description: Needs a person; the pin must never be shown back, nor be recoverable from anything shown.
side_effects: [Unlocks the vault.]
args:
  - name: vault
    type: string
    required: true
    validation: { pattern: "^[a-z-]{1,32}$" }
  - name: pin
    type: string
    required: true
    sensitive: true
    validation: { pattern: "^[0-9]{4}$" }
execution:
  command: { binary: /bin/true, argv: ["{{ args.vault }}", "{{ args.pin }}"] }
  timeout: 5s
`,
  'list.yaml': `schema_version: 1
id: testops.list
title: List the fixture folder
kind: list
risk: low
args: []
execution:
  list: { root: "__ROOT__", path: "" }
  timeout: 5s
`,
}

export function makeCpFixture(natsUrl: string, overrides: Partial<ConfigInput> = {}): CpFixture {
  const dir = mkdtempSync(join(tmpdir(), 'writ-cp-'))
  const packDir = join(dir, 'packs', 'testops')
  const listRoot = join(dir, 'listroot')
  mkdirSync(join(packDir, 'actions'), { recursive: true })
  mkdirSync(listRoot)
  writeFileSync(join(listRoot, 'a.txt'), 'a')
  writeFileSync(join(packDir, 'pack.yaml'), `schema_version: 1\nid: testops\nname: Test ops\nversion: 1.0.0\nactions:\n${Object.keys(ACTIONS).map((f) => `  - actions/${f}`).join('\n')}\n`)
  for (const [f, text] of Object.entries(ACTIONS)) writeFileSync(join(packDir, 'actions', f), text.replace('__ROOT__', listRoot))
  const keys = generateSigningKeyPair()
  const keyFile = join(dir, 'signing.pem')
  const publicKeyFile = join(dir, 'signing.pub.pem')
  writeFileSync(keyFile, keys.privatePem, { mode: 0o600 })
  writeFileSync(publicKeyFile, keys.publicPem)
  const tokens = {
    agent: 'tok-agent-0123456789', agent2: 'tok-agent2-0123456789', operator: 'tok-operator-0123456789', operator2: 'tok-operator2-0123456789',
    operator3: 'tok-operator3-0123456789', outsider: 'tok-outsider-0123456789', agentsOperator: 'tok-agents-operator-0123456789', limited: 'tok-limited-0123456789',
  }
  const input: ConfigInput = {
    listen: { host: '127.0.0.1', port: 0 },
    nats: { servers: [natsUrl] },
    packs: { dirs: [join(dir, 'packs')] },
    signing: { key_file: keyFile },
    principals: [
      { id: 'agent-1', kind: 'agent', token_sha256: hashToken(tokens.agent), groups: ['sre-agents'], person: 'pat' },
      { id: 'agent-2', kind: 'agent', token_sha256: hashToken(tokens.agent2), groups: ['sre-agents'] },
      { id: 'ops-1', kind: 'operator', token_sha256: hashToken(tokens.operator), groups: ['oncall'] },
      { id: 'ops-2', kind: 'operator', token_sha256: hashToken(tokens.operator2), groups: ['oncall'] },
      { id: 'ops-3', kind: 'operator', token_sha256: hashToken(tokens.operator3), groups: ['oncall'] },
      { id: 'dev-1', kind: 'operator', token_sha256: hashToken(tokens.outsider), groups: ['developers'] },
      // The person behind agent-1 also holds an operator token: still not an approver of agent-1's runs.
      { id: 'pat-ops', kind: 'operator', token_sha256: hashToken(tokens.agentsOperator), groups: ['oncall'], person: 'pat' },
      { id: 'limited', kind: 'agent', token_sha256: hashToken(tokens.limited), groups: [], rate_per_minute: 3 },
    ],
    policy: {
      rules: [
        { name: 'no-wipes', match: { actions: ['*.wipe'] }, decision: 'deny', reason: 'wiping is never allowed through writ' },
        // Denied on one node only: the action stays in everyone's scope, so a run of it there is a policy denial.
        { name: 'no-listing-on-web-1', match: { actions: ['testops.list'], nodes: ['web-1'] }, decision: 'deny', reason: 'listing is off on web-1' },
        { name: 'deploys-need-two', match: { actions: ['testops.deploy'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 2, ttl: '15m' },
        { name: 'high-risk-needs-a-person', match: { risk: ['high', 'critical'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
        { name: 'agents-low-risk', match: { groups: ['sre-agents'], max_risk: 'medium' }, decision: 'allow' },
        { name: 'operators', match: { kinds: ['operator'] }, decision: 'allow' },
      ],
    },
    runs: { writ_ttl: '60s', ack_timeout: '2s', lost_grace: '1s', sweep_interval: '200ms', max_wait: '30s' },
    fleet: { offline_after_missed: 3 },
    // Checkpoints at start and stop only, so suites that count audit events see none in between; audit suites set their own.
    audit: { checkpoint_interval: '1h' },
    log: { level: (process.env.WRIT_TEST_LOG ?? 'silent') as 'silent' },
    ...overrides,
  }
  const config = parseConfig(input)
  return {
    dir, packDir, listRoot, keyFile, publicKeyFile, tokens, config,
    writeConfigFile: (extra = {}) => {
      const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`)
      writeFileSync(file, JSON.stringify({ ...input, ...extra }, null, 2))
      return file
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

export const auth = (token: string) => ({ authorization: `Bearer ${token}` })

/**
 * The usual arrangement of a control-plane suite: its own nats-server, a
 * fixture, and an app built from it — all torn down with the test.
 */
export async function startCpSuite(t: { teardown(fn: () => unknown): void }): Promise<{ nats: NatsServerHandle, fx: CpFixture, app: Awaited<ReturnType<typeof buildApp>> }> {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  return { nats, fx, app }
}

/** Where a runner started for `fx` keeps its journal (in-process or as its own process). */
export function runnerJournalPath(fx: Pick<CpFixture, 'dir'>, nodeId: string): string {
  return join(fx.dir, `journal-${nodeId}.jsonl`)
}

/** The entries of that runner's journal, as written so far. */
export function runnerJournal(fx: Pick<CpFixture, 'dir'>, nodeId: string): Array<{ type: string, run_id: string, data: Record<string, any> }> {
  return readFileSync(runnerJournalPath(fx, nodeId), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string, run_id: string, data: Record<string, any> })
}
