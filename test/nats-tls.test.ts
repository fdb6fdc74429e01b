/**
 * NATS over TLS, as the deployment runs it: a real nats-server that requires
 * TLS on its client port, with a certificate from a private CA
 * (test/helpers/test-pki.ts) that names the servers by a DNS name (clients)
 * and by IP (routes), reached by IP as Nomad's service discovery gives them.
 * The control plane and a real runner given the CA and the name
 * (nats.ca_file / WRIT_NATS_CA, nats.tls_server_name /
 * WRIT_NATS_TLS_SERVER_NAME; --nats-ca, --nats-tls-server-name) connect and
 * carry a run end to end; without the CA the control plane does not start and
 * the runner never gets past the handshake; a client given the CA refuses a
 * server without TLS; routes between servers are mutual TLS.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { connect, type TlsOptions } from '@nats-io/transport-node'
import { pino } from 'pino'
import { buildApp } from '@writ/control-plane'
import { WatchdogEventPublisher } from '../node-runner/dist/watchdog/watchdog-events.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { freePort, startNatsServer, type NatsServerHandle } from './helpers/nats-server.js'
import { REPO_ROOT } from './helpers/runner-harness.js'
import { createTestPki, type TestPki } from './helpers/test-pki.js'
import { groups, hcl, JOBS_DIR, onlyJob, tasks, TF_DIR, withDefaults, type Json } from './helpers/hcl-jobs.js'
import { renderTemplate, type LabNomadValues } from './lab/host-agent-job.js'

/** The DNS name on the servers' certificate (terraform: nats_tls_server_name). */
const NAME = 'writ-nats.example.internal'
let pki: TestPki
let nats: NatsServerHandle
t.before(async () => {
  pki = createTestPki()
  const server = pki.issue('nats-server', `DNS:${NAME},IP:127.0.0.1`, 'serverAuth,clientAuth')
  // As jobs/nats.nomad.hcl configures the client listener: TLS required, the certificate from the module's inputs.
  nats = await startNatsServer({ extraConfig: `tls {\n  cert_file: "${server.certFile}"\n  key_file: "${server.keyFile}"\n  timeout: 2\n}\n` })
})
t.teardown(async () => { await nats?.stop(); pki?.remove() })

t.test('the control plane and a runner with the CA connect over TLS and carry a run end to end', async (t) => {
  const fx = makeCpFixture(nats.url, { nats: { servers: [nats.url], ca_file: pki.caFile, tls_server_name: NAME } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const runner = await startRealRunner(fx, nats.url, 'node-tls', { natsCa: pki.caFile, natsTlsServerName: NAME })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('node-tls')?.online, 30_000, 'the runner\'s heartbeat over TLS')
  const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.list', node: 'node-tls', args: {}, reason: 'tls', wait: 10 } })
  t.equal(res.json().status, 'succeeded', JSON.stringify(res.json()))
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
})

t.test('without the CA the control plane does not start: the server\'s certificate cannot be verified', async (t) => {
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  await t.rejects(buildApp(fx.config), { name: 'ControlPlaneStartError', message: /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/ })
  const noName = makeCpFixture(nats.url, { nats: { servers: [nats.url], ca_file: pki.caFile } })
  t.teardown(() => noName.cleanup())
  await t.rejects(buildApp(noName.config), { name: 'ControlPlaneStartError' }, 'with the CA but not the name, a server reached by IP is checked against "localhost" and refused')
  const missing = makeCpFixture(nats.url, { nats: { servers: [nats.url], ca_file: join(pki.dir, 'no-such-ca.pem') } })
  t.teardown(() => missing.cleanup())
  await t.rejects(buildApp(missing.config), { message: /cannot read nats\.ca_file \(WRIT_NATS_CA\) .*no-such-ca\.pem/ }, 'a CA file that is not there is named')
})

t.test('without the CA the runner never gets past the TLS handshake', async (t) => {
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const before = nats.log().length
  const child = spawn(process.execPath, [join(REPO_ROOT, 'node-runner', 'dist', 'cli.js'), 'run', '--nats-url', nats.url, '--node-id', 'node-no-ca',
    '--packs', fx.config.packs.dirs[0] as string, '--trusted-keys', fx.publicKeyFile, '--journal', join(fx.dir, 'no-ca.jsonl')], {
    env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  t.teardown(() => { child.kill('SIGKILL') })
  await eventually(() => /TLS handshake error/.test(nats.log().slice(before)), 30_000, 'the server to see a failed handshake')
  t.notMatch(out, /connected to NATS/, 'the runner did not connect')
})

t.test('a client given the CA refuses a server without TLS (no silent downgrade)', async (t) => {
  const plain = await startNatsServer()
  t.teardown(() => plain.stop())
  await t.rejects(connect({ servers: plain.url, tls: { caFile: pki.caFile }, maxReconnectAttempts: 0 }), /tls|TLS/)
})

t.test('the multipath watchdog publishes its events over TLS with --nats-ca', async (t) => {
  const observer = await connect({ servers: nats.url, tls: { caFile: pki.caFile, servername: NAME } as TlsOptions })
  t.teardown(() => observer.close())
  const got = observer.subscribe('writ.v1.node.node-wd.event.>', { max: 1 })
  await observer.flush()
  const events = WatchdogEventPublisher.start({ natsUrl: nats.url, natsCa: pki.caFile, natsTlsServerName: NAME, nodeId: 'node-wd', nodeName: 'node-wd', log: pino({ level: 'silent' }) })
  t.teardown(() => events.close())
  await eventually(() => events.publish({ kind: 'multipath_kick', severity: 'warning', message: 'kicked mpatha', data: { map: 'mpatha' } }), 30_000, 'the watchdog to connect')
  for await (const m of got) t.match(m.json(), { node_id: 'node-wd', kind: 'multipath_kick' })
  t.throws(() => WatchdogEventPublisher.start({ natsUrl: nats.url, natsCa: join(pki.dir, 'ca.key'), nodeId: 'n', nodeName: 'n', log: pino({ level: 'silent' }) }), /--nats-ca: .*ca\.key does not hold a PEM certificate/)
})

t.test('routes are mutual TLS: servers with the cluster\'s certificate join, one with another CA\'s is refused', async (t) => {
  // As jobs/nats.nomad.hcl renders cluster.conf: TLS on the route listener, the route password, routes by IP.
  const routePorts = [await freePort(), await freePort(), await freePort()]
  const good = pki.issue('nats-route', 'DNS:writ-nats.example.internal,IP:127.0.0.1', 'serverAuth,clientAuth')
  const rogueCa = createTestPki()
  t.teardown(() => rogueCa.remove())
  const rogue = rogueCa.issue('rogue-route', 'IP:127.0.0.1', 'serverAuth,clientAuth')
  const cluster = (i: number, cert: { certFile: string, keyFile: string }, ca: string): string => `cluster {
  name: writ-tls
  listen: 127.0.0.1:${routePorts[i]}
  tls { cert_file: "${cert.certFile}", key_file: "${cert.keyFile}", ca_file: "${ca}", timeout: 2 }
  authorization { user: route, password: "${'p'.repeat(32)}" }
  routes: [${routePorts.filter((_, j) => j !== i).map((p) => `"nats-route://route:${'p'.repeat(32)}@127.0.0.1:${p}"`).join(', ')}]
}\n`
  const a = await startNatsServer({ extraConfig: cluster(0, good, pki.caFile) })
  t.teardown(() => a.stop())
  const b = await startNatsServer({ extraConfig: cluster(1, good, pki.caFile) })
  t.teardown(() => b.stop())
  const sub = await connect({ servers: a.url })
  const pub = await connect({ servers: b.url })
  t.teardown(async () => { await sub.close(); await pub.close() })
  let received = 0
  sub.subscribe('over.the.route', { callback: () => { received++ } })
  await sub.flush()
  await eventually(async () => { pub.publish('over.the.route', 'hi'); await pub.flush(); return received > 0 }, 30_000, 'a message across the TLS route')

  const before = a.log().length
  const c = await startNatsServer({ extraConfig: cluster(2, rogue, rogueCa.caFile) })
  t.teardown(() => c.stop())
  await eventually(() => /TLS route handshake error|certificate signed by unknown authority|bad certificate/.test(a.log().slice(before)), 30_000, 'the route from another CA\'s certificate to be refused')
})

t.test('the NATS job\'s own server config: clients must speak TLS, the monitor answers on loopback only', async (t) => {
  // local/nats.conf as jobs/nats.nomad.hcl renders it (variables at their defaults), with the
  // test's certificate, store and ports where the job has Nomad's; cluster and auth are includes.
  const doc = await hcl(join(JOBS_DIR, 'nats.nomad.hcl'))
  const task = tasks(groups(onlyJob(doc).job)[0]!.group)[0]!.task
  const tpl = (dest: string): string => String((task.template as Json[]).find((x) => x.destination === dest)?.data)
  const [client, monitor] = [await freePort(), await freePort()]
  const values: LabNomadValues = { nodeId: 'n', nodeName: 'n', nodeIp: '127.0.0.1', datacenter: 'dc1', vars: {}, services: {}, variables: {}, workloadIdentityToken: '' }
  const server = pki.issue('nats-job', `DNS:${NAME},IP:127.0.0.1`, 'serverAuth,clientAuth')
  const store = join(pki.dir, 'job-store')
  const conf = renderTemplate(String(withDefaults(doc, tpl('local/nats.conf'))), values, 'local/nats.conf', { NOMAD_ALLOC_INDEX: '0', NOMAD_PORT_client: String(client), NOMAD_PORT_monitor: String(monitor) })
    .replaceAll('/secrets/nats-cert.pem', server.certFile).replaceAll('/secrets/nats-key.pem', server.keyFile).replaceAll('/data/jetstream', store)
    .replace(/^\s*include .*$/gm, '')
  const file = join(pki.dir, 'job-nats.conf')
  writeFileSync(file, conf)
  const proc = spawn('nats-server', ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => { proc.kill('SIGKILL') })
  const info = (): Promise<string> => new Promise((resolve, reject) => {
    const s = netConnect(client, '127.0.0.1')
    s.once('data', (d) => { s.destroy(); resolve(d.toString()) })
    s.once('error', reject)
  })
  const first = await eventually(() => info().catch(() => undefined), 30_000, 'the job\'s nats-server to listen')
  t.match(JSON.parse(first.replace(/^INFO /, '')), { tls_required: true }, 'the client port requires TLS')
  const nc = await connect({ servers: `nats://127.0.0.1:${client}`, tls: { caFile: pki.caFile, servername: NAME } as TlsOptions })
  t.teardown(() => nc.close())
  t.equal(nc.info?.tls_required, true, 'a client with the CA and the name connects')

  t.equal((await fetch(`http://127.0.0.1:${monitor}/varz`)).status, 200, 'the monitor answers on loopback (for a local exporter)')
  const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address
  if (!external) { t.comment('no non-loopback IPv4 address here: the monitor\'s binding was checked on loopback only'); return }
  await t.rejects(fetch(`http://${external}:${monitor}/connz`), 'and not on the host\'s network address: /connz, /accountz, /jsz stay private')
  t.match(conf, new RegExp(`^http: "127\\.0\\.0\\.1:${monitor}"$`, 'm'))
})

t.test('NATS: TLS for clients and routes from the module\'s inputs, the monitor on loopback, every client given the CA', async (t) => {
  const natsDoc = await hcl(join(JOBS_DIR, 'nats.nomad.hcl'))
  const g = groups(onlyJob(natsDoc).job)[0]!.group
  const task = tasks(g)[0]!.task
  const tpl = (dest: string): Json => (task.template as Json[]).find((x) => x.destination === dest)
  const cluster = String(tpl('secrets/cluster.conf').data)
  t.match(cluster, /cluster \{[\s\S]*tls \{\s*cert_file: "\/secrets\/nats-cert\.pem"\s*key_file: "\/secrets\/nats-key\.pem"\s*ca_file: "\/secrets\/nats-ca\.pem"/, 'routes are TLS (nats-server makes cluster TLS mutual)')
  const conf = String(tpl('local/nats.conf').data)
  t.match(conf, /^tls \{\s*cert_file: "\/secrets\/nats-cert\.pem"\s*key_file: "\/secrets\/nats-key\.pem"/m, 'clients must speak TLS')
  t.match(conf, /^http: "127\.0\.0\.1:/m, 'the monitor on loopback')
  t.notMatch(conf, /^http: "0\.0\.0\.0/m)
  for (const [dest, item] of [['secrets/nats-ca.pem', 'tls_ca_pem'], ['secrets/nats-cert.pem', 'tls_cert_pem'], ['secrets/nats-key.pem', 'tls_key_pem']]) {
    t.match(tpl(dest as string)?.data, `nomadVar "nomad/jobs/writ-nats" }}{{ .${item} }}`, `${dest} from the variable's ${item}`)
    t.equal(tpl(dest as string)?.perms, '0400')
  }
  const check = g.service.find((x: Json) => x.name === 'writ-nats').check[0]
  t.same([check.type, check.port], ['tcp', 'client'], 'the health check is a TCP connect to the client port (the monitor is out of its reach)')

  const main = await hcl(join(TF_DIR, 'main.tf'))
  const items = (res: string): string => JSON.stringify(main.resource.nomad_variable[res][0].items)
  for (const item of ['tls_ca_pem       = var.nats_tls_ca_pem', 'tls_cert_pem      = var.nats_tls_cert_pem', 'tls_key_pem       = var.nats_tls_key_pem']) {
    t.match(items('nats'), item.replace(/\s+/g, ' ').split(' = ')[0], `the NATS variable holds ${item.split(' ')[0]}`)
  }
  for (const res of ['control_plane', 'node_runner']) {
    t.match(items(res), 'nats_ca_pem', `${res}: the CA`)
    t.match(items(res), 'nats_tls_server_name', `${res}: the name on the servers' certificate`)
  }
  const wdVars = String(main.resource.nomad_job.multipath_watchdog[0].hcl2[0].vars)
  t.match(wdVars, 'nats_ca_pem          = var.nats_tls_ca_pem')
  t.match(wdVars, 'nats_tls_server_name = var.nats_tls_server_name')
  const tfVars = (await hcl(join(TF_DIR, 'variables.tf'))).variable
  t.equal(tfVars.nats_tls_key_pem[0].sensitive, true, 'the key is sensitive')
  for (const v of ['nats_tls_ca_pem', 'nats_tls_cert_pem', 'nats_tls_key_pem']) t.notOk('default' in tfVars[v][0], `${v} is required: there is no NATS without TLS`)

  for (const [file, ns] of [['writ-node-runner.nomad.hcl', 'writ-node-runner'], ['writ-control-plane.nomad.hcl', 'writ-control-plane']]) {
    const text = readFileSync(join(JOBS_DIR, file as string), 'utf8')
    t.match(text, new RegExp(`nomadVar "nomad/jobs/${ns}" \\}\\}\\{\\{ if \\.nats_ca_pem\\.Value \\}\\}|\\{\\{- if \\.nats_ca_pem\\.Value \\}\\}\\s*WRIT_NATS_CA=`), `${file}: WRIT_NATS_CA when the variable holds the CA`)
    t.match(text, /WRIT_NATS_TLS_SERVER_NAME=\{\{ \.nats_tls_server_name\.Value \}\}/, `${file}: and the name on the servers' certificate`)
  }
  const wd = tasks(groups(onlyJob(await hcl(join(JOBS_DIR, 'multipath-watchdog.nomad.hcl'))).job)[0]!.group)[0]!.task
  const args = wd.config[0].args as string[]
  t.equal(args[args.indexOf('--nats-ca') + 1], '/local/nats-ca.pem', 'the watchdog verifies NATS against the CA')
  t.equal(args[args.indexOf('--nats-tls-server-name') + 1], '${var.nats_tls_server_name}')
})
