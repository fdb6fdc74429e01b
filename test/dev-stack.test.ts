/**
 * `writ dev`, as a new user runs it: one command brings up NATS, the control
 * plane and a runner for this host, runs a real action, and leaves tokens for
 * scripts; without nats-server it says which Debian package to install.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from './helpers/runner-harness.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { connectMcp } from './helpers/mcp-client.js'
import { devNodeId } from '../control-plane/dist/cli/dev-stack.js'

const CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')

t.test('writ dev starts everything, proves it with a real run, and stops on Ctrl-C', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-dev-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const child = spawn(process.execPath, [CLI, 'dev', '--start-nats', '--port', '0', '--state-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
  for (let i = 0; i < 300 && !out.includes('Ctrl-C stops everything'); i++) await new Promise((r) => setTimeout(r, 100))
  t.match(out, /started nats-server -js on nats:\/\/127\.0\.0\.1:\d+/, 'a private nats-server was started')
  t.match(out, /debugging\.loadavg on .*: succeeded\n\s+\d+\.\d+ \d+\.\d+ \d+\.\d+ \d+\/\d+ \d+/, 'a real loadavg line came back through the whole path')
  const env = Object.fromEntries(readFileSync(join(dir, 'dev.env'), 'utf8').trim().split('\n').map((l) => l.split('=', 2) as [string, string]))
  t.match(env, { WRIT_URL: /^http:\/\/127\.0\.0\.1:\d+$/, WRIT_AGENT_TOKEN: /^writ_a_/, WRIT_OPERATOR_TOKEN: /^writ_o_/ })
  t.notOk(readFileSync(join(dir, 'dev.yaml'), 'utf8').includes(env.WRIT_AGENT_TOKEN!), 'the config holds only token hashes')
  const [, node, nodeId] = /for this host \("([^"]+)", node id ([0-9a-f-]+)\)/.exec(out) ?? []
  const res = await fetch(`${env.WRIT_URL}/v1/runs`, { method: 'POST', headers: { authorization: `Bearer ${env.WRIT_AGENT_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'debugging.disk_free', node, args: {}, reason: 'dev test', wait: 10 }) })
  const run = await res.json() as { status: string, result?: { stdout: string } }
  t.equal(run.status, 'succeeded', 'the printed curl recipe works with the written token')
  t.match(run.result?.stdout, /Mounted on/)

  t.match(nodeId, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'the dev runner has a UUID node id, as a Nomad node does')
  t.equal(nodeId, devNodeId(), 'derived from this host, so it is the same on every start')
  const nomadRun = await fetch(`${env.WRIT_URL}/v1/runs`, { method: 'POST', headers: { authorization: `Bearer ${env.WRIT_AGENT_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'nomad.node_status', node, args: { node_id: nodeId }, reason: 'dev test: a node action', wait: 10 }) })
  const nodeStatus = await nomadRun.json() as { status: string, status_reason?: string }
  t.equal(nodeStatus.status, 'failed', 'a stock nomad.* node action can be requested for the dev node and runs')
  t.match(nodeStatus.status_reason, /no Nomad agent at http:\/\/127\.0\.0\.1:4646/, 'and without a Nomad agent it says so')

  const mcpAdd = /claude mcp add --transport http writ (http:\/\/127\.0\.0\.1:\d+)\/mcp --header "Authorization: Bearer ([A-Za-z0-9_-]+)"/.exec(out)
  t.ok(mcpAdd, 'the ready-to-paste `claude mcp add` line is printed')
  t.equal(mcpAdd?.[1], env.WRIT_URL)
  const agent = await connectMcp(mcpAdd?.[1] as string, mcpAdd?.[2])
  const viaMcp = await agent.call('run_action', { action: 'debugging.loadavg', node, reason: 'dev test over MCP' })
  await agent.close()
  t.equal(viaMcp.value.status, 'succeeded', 'an MCP client configured with exactly that URL and header runs an action')

  const link = /(http:\/\/127\.0\.0\.1:\d+\/ui\/sign-in\/link\/[A-Za-z0-9_-]+)/.exec(out)?.[1]
  t.ok(link, 'a one-time portal sign-in link is printed')
  const page = await fetch(link as string)
  t.match(await page.text(), /signs you in as <strong>dev-operator<\/strong>/, 'the link opens the sign-in page for the dev operator')

  const gated = await (await fetch(`${env.WRIT_URL}/v1/runs`, { method: 'POST', headers: { authorization: `Bearer ${env.WRIT_AGENT_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'nomad.alloc_stop', node, args: { alloc_id: '5456bd7a-9fc0-c0dd-6131-cbee77f57577' }, reason: 'dev test: held for a per\u00adson\u200b' }) })).json() as { id: string, status: string }
  t.equal(gated.status, 'pending_approval', 'a high-risk action waits for an operator')
  await eventually(() => out.includes('[slack] Approval needed: nomad.alloc_stop'), 10_000, 'the printed Slack message')
  t.match(out, '[slack] Approval needed: nomad.alloc_stop', 'without a webhook the Slack message is printed')
  t.match(out, `[slack]   Stop allocation 5456bd7a on ${node}`, 'with its header, the run\'s summary')
  t.match(out, 'held for a per\\u00ADson\\u200B', 'with every invisible character of the reason shown as its escape')
  t.notMatch(out, /[\u00ad\u200b]/, 'none of them printed raw')
  const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, WRIT_URL: env.WRIT_URL, WRIT_OPERATOR_TOKEN: env.WRIT_OPERATOR_TOKEN, WRIT_TOKEN: '' } })
  const pending = cli(['pending'])
  t.equal(pending.status, 0, pending.stderr)
  t.match(pending.stdout, new RegExp(`${gated.id}  Stop allocation 5456bd7a on .*  0/1 approvals`), 'writ pending lists it by its summary')
  t.match(pending.stdout, new RegExp('    action:   nomad\\.alloc_stop on .* \\(high risk\\), requested by dev-agent\n'))
  t.match(pending.stdout, '    args:     alloc_id=5456bd7a-9fc0-c0dd-6131-cbee77f57577\n', 'with its arguments')
  const denied = cli(['deny', gated.id, '--reason', 'not on a laptop'])
  t.equal(denied.status, 0, denied.stderr)
  t.match(denied.stdout, `run ${gated.id}: denied — denied by dev-operator: not on a laptop`)
  child.kill('SIGINT')
  t.equal(await exited, 0, 'Ctrl-C stops the stack cleanly')
})

t.test('without nats-server, writ dev names the Debian package to install', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-dev-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const r = spawnSync(process.execPath, [CLI, 'dev', '--start-nats', '--state-dir', dir], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } })
  t.not(r.status, 0)
  t.match(r.stderr, /apt-get install nats-server/)
})

t.test('a bad --port is a usage error that starts nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-dev-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const r = spawnSync(process.execPath, [CLI, 'dev', '--port', 'abc', '--state-dir', dir], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr, /--port takes a port number/)
  t.notOk(existsSync(join(dir, 'dev.yaml')), 'no config was written')
})

t.test('writ dev --packs serves a pack author\'s folder beside the stock packs, in the catalog and on the runner', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-dev-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pack = join(dir, 'my-packs', 'hello')
  mkdirSync(join(pack, 'actions'), { recursive: true })
  writeFileSync(join(pack, 'pack.yaml'), 'schema_version: 1\nid: hello\nname: Hello\nversion: 0.1.0\nactions: [actions/say.yaml, actions/broken.yaml]\n')
  writeFileSync(join(pack, 'actions', 'say.yaml'), `schema_version: 1
id: hello.say
title: Say a word
kind: exec
risk: low
side_effects: [None.]
args: [{ name: word, type: string, required: true, validation: { pattern: "^[a-z]{1,20}$" } }]
execution: { command: { binary: printf, argv: ["hello %s", "{{ args.word }}"] }, timeout: 5s }
examples: [{ title: world, args: { word: world } }]
`)
  writeFileSync(join(pack, 'actions', 'broken.yaml'), 'schema_version: 1\nid: hello.broken\ntitle: Broken\nkind: exec\nrisk: low\nexecution: { command: { binary: true }, timeout: soon }\n')
  const child = spawn(process.execPath, [CLI, 'dev', '--start-nats', '--port', '0', '--state-dir', join(dir, 'state'), '--packs', join(dir, 'my-packs')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
  await eventually(() => out.includes('Ctrl-C stops everything') || child.exitCode !== null, 30_000, 'writ dev to start')
  t.match(out, /with the stock packs and hello \(--packs\)\./, 'the added pack is named')
  t.match(out, /pack load error: .*broken\.yaml: execution\.timeout: expected a duration/, 'what does not load is printed, with file and field')
  const env = Object.fromEntries(readFileSync(join(dir, 'state', 'dev.env'), 'utf8').trim().split('\n').map((l) => l.split('=', 2) as [string, string]))
  const [, node] = /for this host \("([^"]+)"/.exec(out) ?? []
  const res = await fetch(`${env.WRIT_URL}/v1/runs`, { method: 'POST', headers: { authorization: `Bearer ${env.WRIT_AGENT_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'hello.say', node, args: { word: 'author' }, reason: 'try my pack', wait: 10 }) })
  const run = await res.json() as { status: string, result?: { stdout: string } }
  t.equal(run.status, 'succeeded', 'the catalog knows the action and the runner runs it (same digest on both)')
  t.equal(run.result?.stdout, 'hello author')
  child.kill('SIGINT')
  t.equal(await exited, 0)

  const missing = spawnSync(process.execPath, [CLI, 'dev', '--start-nats', '--state-dir', join(dir, 'state2'), '--packs', join(dir, 'nowhere')], { encoding: 'utf8' })
  t.equal(missing.status, 2, 'a folder that brings no pack stops writ dev before it starts anything')
  t.match(missing.stderr, /--packs .*nowhere: .*not a directory/)
  t.notOk(existsSync(join(dir, 'state2', 'dev.yaml')), 'no config was written')
})
