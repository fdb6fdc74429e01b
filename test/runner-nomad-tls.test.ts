/**
 * Nomad over TLS: the runner takes an https address with the cluster's CA
 * (NOMAD_CACERT), the agent's certificate name when the address is an IP
 * (NOMAD_TLS_SERVER_NAME), and a client certificate when the agent demands
 * one (NOMAD_CLIENT_CERT / NOMAD_CLIENT_KEY) — the variables the Nomad CLI
 * reads. Against an https Nomad double with certificates from a test CA:
 * a verified agent answers, an unverifiable one is never sent the token, and
 * settings that cannot work stop the runner at boot, naming the setting.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateSigningKeyPair } from '@writ/packs/protocol'
import { ignoredNomadTlsSettings, loadRunnerConfig, nomadTargetFrom, RunnerConfigError } from '../node-runner/dist/runner-config.js'
import { closeHttpClients } from '../node-runner/dist/executors/http-executor.js'
import { startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'
import { outcomeOf, runHttpAction } from './helpers/run-http-action.js'
import { REPO_ROOT } from './helpers/runner-harness.js'
import { createTestPki, type TestPki } from './helpers/test-pki.js'
import { startNatsServer } from './helpers/nats-server.js'
import { eventually } from './helpers/cp-fake-runner.js'

const TOKEN = '3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a99'
let pki: TestPki
const doubles: NomadDouble[] = []
t.before(() => { pki = createTestPki() })
t.teardown(async () => { await closeHttpClients(); for (const d of doubles) await d.close(); pki.remove() })

/** The runner's config as the job or an operator would give it: environment variables only. */
const configFrom = (env: Record<string, string>) => loadRunnerConfig({}, {
  WRIT_NODE_ID: 'n1', WRIT_PACKS: join(REPO_ROOT, 'packs', 'stock'), WRIT_TRUSTED_KEYS: '/dev/null', ...env,
})
const double = async (tls: NonNullable<Parameters<typeof startNomadDouble>[0]>['tls']): Promise<NomadDouble> => {
  const d = await startNomadDouble({ token: TOKEN, tls })
  doubles.push(d)
  return d
}

t.test('https with NOMAD_CACERT: the agent is verified and answers', async (t) => {
  const agent = pki.issue('agent-ip', 'DNS:client.global.nomad,DNS:localhost,IP:127.0.0.1', 'serverAuth')
  const nomad = await double({ key: agent.key, cert: agent.cert })
  t.match(nomad.addr, /^https:\/\/127\.0\.0\.1:\d+$/)
  const target = nomadTargetFrom(configFrom({ NOMAD_ADDR: nomad.addr, NOMAD_TOKEN: TOKEN, NOMAD_CACERT: pki.caFile }))
  const out = outcomeOf(await runHttpAction('nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'eligible' }, { nomad: target }))
  t.equal(out.status, 'succeeded', out.error ?? '')
  t.same(nomad.requests.map((r) => [r.method, r.path, r.headers['x-nomad-token']]), [['POST', `/v1/node/${nomad.ids.agentNode}/eligibility`, TOKEN]])

  const untrusted = outcomeOf(await runHttpAction('nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'eligible' },
    { nomad: { addr: nomad.addr, token: TOKEN } }))
  t.equal(untrusted.status, 'failed', 'without the CA the agent cannot be verified')
  t.match(untrusted.error, new RegExp(`nomad: cannot reach ${nomad.addr.replace(/\./g, '\\.')}: .*(certificate|CERT)`))
  t.equal(nomad.requests.length, 1, 'and the token was never sent to it')
  t.notMatch(JSON.stringify(untrusted), TOKEN)
})

t.test('an agent certificate without the IP: NOMAD_TLS_SERVER_NAME names it (client.global.nomad)', async (t) => {
  const agent = pki.issue('agent-name', 'DNS:client.global.nomad', 'serverAuth')
  const nomad = await double({ key: agent.key, cert: agent.cert })
  const without = outcomeOf(await runHttpAction('nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'eligible' },
    { nomad: nomadTargetFrom(configFrom({ NOMAD_ADDR: nomad.addr, NOMAD_TOKEN: TOKEN, NOMAD_CACERT: pki.caFile })) }))
  t.equal(without.status, 'failed', 'the name does not match 127.0.0.1')
  t.match(without.error, /altnames|hostname|IP/i)
  const withName = outcomeOf(await runHttpAction('nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'eligible' },
    { nomad: nomadTargetFrom(configFrom({ NOMAD_ADDR: nomad.addr, NOMAD_TOKEN: TOKEN, NOMAD_CACERT: pki.caFile, NOMAD_TLS_SERVER_NAME: 'client.global.nomad' })) }))
  t.equal(withName.status, 'succeeded', withName.error ?? '')
  t.equal(nomad.requests.length, 1, 'only the verified connection carried a request')
})

t.test('verify_https_client: the client certificate from NOMAD_CLIENT_CERT/NOMAD_CLIENT_KEY is presented', async (t) => {
  const agent = pki.issue('agent-mtls', 'DNS:client.global.nomad,IP:127.0.0.1', 'serverAuth')
  const client = pki.issue('runner', 'DNS:cli.global.nomad', 'clientAuth')
  const nomad = await double({ key: agent.key, cert: agent.cert, ca: pki.ca, requireClientCert: true })
  const base = { NOMAD_ADDR: nomad.addr, NOMAD_TOKEN: TOKEN, NOMAD_CACERT: pki.caFile }
  const refused = outcomeOf(await runHttpAction('nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'eligible' }, { nomad: nomadTargetFrom(configFrom(base)) }))
  t.equal(refused.status, 'failed', 'no client certificate: the agent closes the connection')
  const ok = outcomeOf(await runHttpAction('nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'eligible' },
    { nomad: nomadTargetFrom(configFrom({ ...base, NOMAD_CLIENT_CERT: client.certFile, NOMAD_CLIENT_KEY: client.keyFile })) }))
  t.equal(ok.status, 'succeeded', ok.error ?? '')
})

t.test('TLS settings that cannot work stop the runner at boot, naming the setting', async (t) => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['a CA for a plain-http address', { NOMAD_ADDR: 'http://127.0.0.1:4646', NOMAD_CACERT: pki.caFile }, /TLS settings .* are set but NOMAD_ADDR \/ --nomad-addr is http:\/\/, so they would not be used/],
    ['an unreadable CA file', { NOMAD_ADDR: 'https://127.0.0.1:4646', NOMAD_CACERT: '/nonexistent/ca.pem' }, /^NOMAD_CACERT \/ --nomad-cacert: cannot read \/nonexistent\/ca\.pem/],
    ['a CA file that is not a certificate', { NOMAD_ADDR: 'https://127.0.0.1:4646', NOMAD_CACERT: join(pki.dir, 'ca.key') }, /^NOMAD_CACERT \/ --nomad-cacert: .* does not hold a PEM certificate/],
    ['a client certificate without its key', { NOMAD_ADDR: 'https://127.0.0.1:4646', NOMAD_CLIENT_CERT: pki.caFile }, /go together; only one is set/],
    ['an address that is not one', { NOMAD_ADDR: 'nomad.service:4646' }, /must be https:\/\/host:port, http:\/\/host:port or unix:\/\/\/path\/api\.sock/],
  ]
  for (const [what, env, message] of cases) {
    t.throws(() => configFrom(env), { name: 'RunnerConfigError', message }, what)
  }
  t.ok(configFrom({ NOMAD_ADDR: 'https://127.0.0.1:4646', NOMAD_CACERT: pki.caFile }), 'https with a CA is fine')
  t.ok(RunnerConfigError)

  // The executable says the same and exits 2, before connecting anywhere.
  writeFileSync(join(pki.dir, 'not-a-cert.pem'), 'hello')
  const cli = spawnSync(process.execPath, [join(REPO_ROOT, 'node-runner', 'dist', 'cli.js'), 'run', '--node-id', 'n1', '--packs', join(REPO_ROOT, 'packs', 'stock'), '--trusted-keys', '/dev/null'], {
    encoding: 'utf8', env: { PATH: process.env.PATH, NOMAD_ADDR: 'https://127.0.0.1:4646', NOMAD_CACERT: join(pki.dir, 'not-a-cert.pem') }, timeout: 30_000,
  })
  t.equal(cli.status, 2, 'exit status 2: bad configuration')
  t.match(cli.stderr, /NOMAD_CACERT \/ --nomad-cacert: .*not-a-cert\.pem does not hold a PEM certificate/)
})

/** What the packaged Nomad agent unit can hand a raw_exec task from /etc/nomad.d/nomad.env (files that need not exist). */
const AGENT_TLS_ENV = {
  NOMAD_CACERT: '/etc/nomad.d/tls/nomad-agent-ca.pem',
  NOMAD_CLIENT_CERT: '/etc/nomad.d/tls/global-cli-nomad.pem',
  NOMAD_CLIENT_KEY: '/etc/nomad.d/tls/global-cli-nomad-key.pem',
  NOMAD_TLS_SERVER_NAME: 'client.global.nomad',
}

t.test('on the Task API socket, TLS settings from the agent\'s environment are ignored, not fatal', async (t) => {
  const cfg = configFrom({ NOMAD_ADDR: 'unix:///secrets/api.sock', NOMAD_TOKEN: TOKEN, ...AGENT_TLS_ENV })
  t.same(nomadTargetFrom(cfg), { addr: 'unix:///secrets/api.sock', token: TOKEN }, 'the socket is used without TLS, and no TLS file is read')
  t.same(ignoredNomadTlsSettings(cfg), ['NOMAD_CACERT / --nomad-cacert', 'NOMAD_CLIENT_CERT / --nomad-client-cert', 'NOMAD_CLIENT_KEY / --nomad-client-key', 'NOMAD_TLS_SERVER_NAME / --nomad-tls-server-name'])
  t.same(ignoredNomadTlsSettings(configFrom({ NOMAD_ADDR: 'unix:///secrets/api.sock', NOMAD_CACERT: '', NOMAD_TLS_SERVER_NAME: '' })), [], 'empty values (the job clears them) are unset: nothing to ignore')
  t.throws(() => configFrom({ NOMAD_ADDR: 'http://127.0.0.1:4646', NOMAD_CACERT: pki.caFile }), { name: 'RunnerConfigError' }, 'plain http with a CA still stops the runner')

  // The executable starts, connects and says once, at start, what it ignored.
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const keys = generateSigningKeyPair()
  writeFileSync(join(pki.dir, 'trusted.pem'), keys.publicPem)
  const child = spawn(process.execPath, [join(REPO_ROOT, 'node-runner', 'dist', 'cli.js'), 'run', '--node-id', 'n-socket', '--packs', join(REPO_ROOT, 'packs', 'stock'),
    '--trusted-keys', join(pki.dir, 'trusted.pem'), '--journal', join(pki.dir, 'socket-journal.jsonl'), '--heartbeat-interval-ms', '200'], {
    env: { PATH: process.env.PATH, WRIT_NATS_URL: nats.url, NOMAD_ADDR: `unix://${join(pki.dir, 'api.sock')}`, NOMAD_TOKEN: TOKEN, ...AGENT_TLS_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { child.kill('SIGKILL') })
  await Promise.race([
    eventually(() => /connected to NATS/.test(out), 20_000, 'the runner to connect'),
    exited.then((code) => { throw new Error(`the runner exited (${code}): ${err}${out}`) }),
  ])
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'and drains cleanly')
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number, msg: string, ignored?: string[] })
  const warnings = lines.filter((l) => l.level === 40)
  t.equal(warnings.length, 1, `exactly one warning: ${warnings.map((w) => w.msg).join(' | ')}`)
  t.match(warnings[0]?.msg, /^ignoring NOMAD_CACERT \/ --nomad-cacert, NOMAD_CLIENT_CERT \/ --nomad-client-cert, NOMAD_CLIENT_KEY \/ --nomad-client-key, NOMAD_TLS_SERVER_NAME \/ --nomad-tls-server-name: the Task API socket takes no TLS settings/)
  t.same(warnings[0]?.ignored?.length, 4)
  t.notMatch(out + err, TOKEN, 'the token is never logged')
})
