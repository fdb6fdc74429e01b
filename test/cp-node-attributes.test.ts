/**
 * Policy matches a node's pool, datacenter and class as the Nomad API states
 * them (`GET /v1/nodes` with the control plane's own token, over https with a
 * private CA too), never as a runner describes itself; when Nomad cannot be
 * asked, the attributes are a clear "unknown" that matches no attribute rule.
 */
import t, { type Test } from 'tap'
import { applyEnvOverrides, buildApp, parseConfig } from '@writ/control-plane'
import { NomadNodesClient } from '../control-plane/dist/fleet/nomad-nodes.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startNatsServer } from './helpers/nats-server.js'
import { startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'
import { createTestPki } from './helpers/test-pki.js'

const NOMAD_TOKEN = 'cp-nomad-token-0123456789'
/** The one node of ../shared/fixtures/nomad/GET_nodes.json (Name nomad-4, Datacenter dc1, NodePool default). */
const NOMAD_SAMPLE_NODE = 'f7476465-4d6e-c0de-26d0-e383c49be941'

async function setup(t: Test, double: NomadDouble, extraNomad: Record<string, unknown> = {}) {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  // max_stale is the window in which a read node list counts: wide enough that a busy machine's late refresh does not turn
  // the attributes unknown between two requests of one test; the stale case waits for it.
  const fx = makeCpFixture(nats.url, {
    nomad: { addr: double.addr, token: NOMAD_TOKEN, refresh_interval: '200ms', max_stale: '5s', timeout: '2s', ...extraNomad },
    policy: {
      rules: [
        { name: 'no restarts in the default pool', match: { actions: ['testops.restart'], node_pools: ['default'] }, decision: 'deny', reason: 'restarts are frozen in the default pool' },
        { name: 'restarts otherwise', match: { actions: ['testops.restart'] }, decision: 'allow' },
        { name: 'echo only in prod', match: { actions: ['testops.echo'], node_pools: ['prod'] }, decision: 'allow' },
        { name: 'lists in dc1, default pool', match: { actions: ['testops.list'], datacenters: ['dc1'], node_pools: ['default'] }, decision: 'allow' },
      ],
    },
  })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  // The node Nomad lists in its published sample, whose runner claims a looser pool and another datacenter.
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: NOMAD_SAMPLE_NODE, nodeName: 'nomad-4', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, nomad: { node_pool: 'prod', datacenter: 'dc9' } })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('nomad-4')?.online, 5000, 'node online')
  const post = (action: string, args: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action, node: 'nomad-4', args, reason: 'attributes', wait: 5 } })
  return { app, fx, runner, post }
}

t.test('attributes come from GET /v1/nodes with the control plane token, not from the heartbeat', async (t) => {
  const double = await startNomadDouble({ token: NOMAD_TOKEN })
  t.teardown(() => double.close())
  const { app, fx, post } = await setup(t, double)
  await eventually(() => app.writ.fleet.find('nomad-4')?.nomad.source === 'nomad', 5000, 'the Nomad node list read')
  const nodes = await app.inject({ method: 'GET', url: '/v1/nodes', headers: auth(fx.tokens.agent) })
  t.match(nodes.json().nodes[0].nomad, { source: 'nomad', datacenter: 'dc1', node_pool: 'default', nomad_name: 'nomad-4', nomad_status: 'ready' }, 'GET /v1/nodes shows what Nomad says')
  const listCall = double.requests.find((r) => r.path === '/v1/nodes')
  t.equal(listCall?.method, 'GET')
  t.equal(listCall?.headers['x-nomad-token'], NOMAD_TOKEN, 'with the control plane\'s own token')

  const echo = await post('testops.echo', { message: 'hi' })
  t.equal(echo.statusCode, 403, 'the runner claims node_pool "prod"; Nomad says "default": the prod-only rule does not match')
  t.match(echo.json().error, { code: 'WRIT_ERR_POLICY_DENIED' })
  const list = await post('testops.list', {})
  t.equal(list.json().status, 'succeeded', 'a rule on Nomad\'s datacenter and pool matches')

  t.test('when Nomad stops answering, the attributes turn unknown and match no attribute rule', async (t) => {
    await double.close()
    await eventually(() => app.writ.fleet.find('nomad-4')?.nomad.source === 'unknown', 30_000, 'attributes to go stale')
    const node = app.writ.fleet.find('nomad-4')
    t.match(node?.nomad, { source: 'unknown', reason: /Nomad node list is \d+ s old: Nomad at http:\/\/127\.0\.0\.1:\d+ is unreachable/ })
    const again = await post('testops.list', {})
    t.equal(again.statusCode, 403, 'the datacenter rule no longer matches')
    t.match(again.json().error.message, /default deny/)
    // A deny keyed on attributes still holds while they are unknown: Nomad being down opens nothing.
    const restart = await post('testops.restart', {})
    t.equal(restart.statusCode, 403, 'the pool deny still applies to a node whose pool is unknown')
    t.match(restart.json().error.message, /restarts are frozen in the default pool \(the rule names node attributes, and this node's are unknown: the Nomad node list is \d+ s old/)
  })
})

t.test('a wrong token leaves the attributes unknown, with Nomad\'s answer as the reason', async (t) => {
  const double = await startNomadDouble({ token: 'another-token' })
  t.teardown(() => double.close())
  const { app } = await setup(t, double)
  await eventually(() => /ACL token not found/.test(JSON.stringify(app.writ.fleet.find('nomad-4')?.nomad)), 5000, 'the refusal to show')
  t.match(app.writ.fleet.find('nomad-4')?.nomad, { source: 'unknown', reason: /answered GET \/v1\/nodes with 403: ACL token not found/ })
})

t.test('NOMAD_ADDR over https with NOMAD_CACERT', async (t) => {
  const pki = createTestPki()
  t.teardown(() => pki.remove())
  const server = pki.issue('nomad-https', 'IP:127.0.0.1', 'serverAuth')
  const double = await startNomadDouble({ token: NOMAD_TOKEN, tls: { key: server.key, cert: server.cert } })
  t.teardown(() => double.close())
  t.match(double.addr, /^https:/)
  const { app } = await setup(t, double, { ca_cert: pki.caFile })
  await eventually(() => app.writ.fleet.find('nomad-4')?.nomad.source === 'nomad', 5000, 'the node list read over https')
  t.match(app.writ.fleet.find('nomad-4')?.nomad, { source: 'nomad', node_pool: 'default' })
})

t.test('verify_https_client, and an agent certificate that names client.global.nomad, not the address', async (t) => {
  const pki = createTestPki()
  t.teardown(() => pki.remove())
  const agent = pki.issue('agent-name-only', 'DNS:client.global.nomad', 'serverAuth')
  const client = pki.issue('cp-client', 'DNS:cli.global.nomad', 'clientAuth')
  const double = await startNomadDouble({ token: NOMAD_TOKEN, tls: { key: agent.key, cert: agent.cert, ca: pki.ca, requireClientCert: true } })
  t.teardown(() => double.close())

  // The settings as the job gives them: environment variables over the config file.
  const env = { NOMAD_ADDR: double.addr, NOMAD_CACERT: pki.caFile, NOMAD_TLS_SERVER_NAME: 'client.global.nomad', NOMAD_CLIENT_CERT: client.certFile, NOMAD_CLIENT_KEY: client.keyFile }
  const fromEnv = parseConfig(applyEnvOverrides({ packs: { dirs: ['/p'] }, signing: { key_file: '/k' } }, env)).nomad
  t.match(fromEnv, { addr: double.addr, ca_cert: pki.caFile, tls_server_name: 'client.global.nomad', client_cert: client.certFile, client_key: client.keyFile })

  const { app } = await setup(t, double, { ca_cert: pki.caFile, tls_server_name: 'client.global.nomad', client_cert: client.certFile, client_key: client.keyFile })
  await eventually(() => app.writ.fleet.find('nomad-4')?.nomad.source === 'nomad', 5000, 'the node list read over mutual TLS')
  t.match(app.writ.fleet.find('nomad-4')?.nomad, { source: 'nomad', node_pool: 'default', datacenter: 'dc1' })
  t.equal(double.requests.filter((r) => r.path === '/v1/nodes')[0]?.headers['x-nomad-token'], NOMAD_TOKEN)

  // The client on its own, against an agent of its own: the control plane above keeps reading `double` every 200 ms.
  const direct = await startNomadDouble({ token: NOMAD_TOKEN, tls: { key: agent.key, cert: agent.cert, ca: pki.ca, requireClientCert: true } })
  t.teardown(() => direct.close())
  const list = (opts: Record<string, string>) => {
    const c = new NomadNodesClient({ addr: direct.addr, token: NOMAD_TOKEN, caCertFile: pki.caFile, timeoutMs: 3000, ...opts })
    return c.list().finally(() => c.close())
  }
  await t.rejects(list({ clientCertFile: client.certFile, clientKeyFile: client.keyFile }), /unreachable: .*(altnames|Hostname\/IP|IP: 127\.0\.0\.1)/, 'without the server name the certificate does not match 127.0.0.1')
  await t.rejects(list({ tlsServerName: 'client.global.nomad' }), /unreachable/, 'without the client certificate the agent closes the connection')
  t.equal(direct.requests.length, 0, 'neither unverified connection carried a request (nor the token)')
  t.same((await list({ tlsServerName: 'client.global.nomad', clientCertFile: client.certFile, clientKeyFile: client.keyFile })).map((n) => n.id), [NOMAD_SAMPLE_NODE])
})

t.test('Nomad TLS settings that cannot work stop the boot, naming the setting', async (t) => {
  const base = { packs: { dirs: ['/p'] }, signing: { key_file: '/k' } }
  t.throws(() => parseConfig({ ...base, nomad: { addr: 'https://127.0.0.1:4646', client_cert: '/c.pem' } }), /nomad\.client_cert \(NOMAD_CLIENT_CERT\) and nomad\.client_key \(NOMAD_CLIENT_KEY\) go together/)
  t.throws(() => parseConfig({ ...base, nomad: { addr: 'http://127.0.0.1:4646', ca_cert: '/ca.pem', tls_server_name: 'client.global.nomad' } }), /nomad\.ca_cert, nomad\.tls_server_name set, but nomad\.addr \(NOMAD_ADDR\) is not https:\/\//)
  t.throws(() => new NomadNodesClient({ addr: 'https://127.0.0.1:4646', clientCertFile: '/nonexistent/cli.pem', clientKeyFile: '/nonexistent/cli-key.pem', timeoutMs: 1000 }), /cannot read nomad\.client_cert \/nonexistent\/cli\.pem/)
})
