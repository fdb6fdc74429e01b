/**
 * multipathd listens on /run/multipathd.socket (multipath-tools 0.12+) or on
 * the abstract socket @/org/kernel/linux/storage/multipathd (every release,
 * and the only one on Debian 12). A real runner whose socket list points at a
 * path and an abstract name of this suite's own: when either listens, an
 * action that runs the multipathd client runs; when neither does, it answers
 * "multipathd is not running on this node" and the client is never started.
 */
import t from 'tap'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { loadPacks } from '@writ/packs'
import { MULTIPATHD_SOCKETS, probeMultipathd } from '../node-runner/dist/multipathd-socket.js'
import { STOCK_PACKS, startRunnerHarness, type RunnerHarness } from './helpers/runner-harness.js'

const work = mkdtempSync(join(tmpdir(), 'writ-multipathd-'))
const pathSocket = join(work, 'multipathd.socket')
const abstractSocket = `@/writ-test/multipathd-${randomBytes(6).toString('hex')}`
const marker = join(work, 'client-ran')

// A pack whose action runs a stand-in multipathd client (by that name) that leaves a marker.
const packs = join(work, 'packs')
mkdirSync(join(packs, 'mp', 'actions'), { recursive: true })
const fakeClient = join(work, 'bin', 'multipathd')
mkdirSync(join(work, 'bin'))
writeFileSync(fakeClient, `#!/bin/sh\ntouch '${marker}'\nprintf 'maps: none\\n'\n`)
chmodSync(fakeClient, 0o755)
writeFileSync(join(packs, 'mp', 'pack.yaml'), 'schema_version: 1\nid: mp\nname: multipathd stand-in\nversion: 1.0.0\nactions: [actions/show.yaml]\n')
writeFileSync(join(packs, 'mp', 'actions', 'show.yaml'), `schema_version: 1
id: mp.show
title: Ask multipathd
kind: exec
risk: low
side_effects: [None.]
execution: { command: { binary: ${fakeClient}, argv: [show, maps] }, timeout: 5s }
examples: [{ title: show, args: {} }]
`)
const mpDigest = loadPacks([packs]).packs[0]!.digest

let h: RunnerHarness
let listening: Server | undefined
t.before(async () => {
  h = await startRunnerHarness({ extraConfig: { packDirs: [STOCK_PACKS, packs], multipathdSockets: [pathSocket, abstractSocket] } })
})
t.teardown(async () => { await stopListening(); await h.stop(); rmSync(work, { recursive: true, force: true }) })

async function listenOn(name: string): Promise<void> {
  await stopListening()
  const server = createServer((c) => c.end())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(name.startsWith('@') ? `\0${name.slice(1)}` : name, resolve)
  })
  listening = server
}
async function stopListening(): Promise<void> {
  const s = listening
  listening = undefined
  if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
}
const runShow = () => h.run('mp.show', {}, { pack: 'mp', pack_digest: mpDigest })

t.test('the default socket list is the one multipath-tools\' own client tries, path first', async (t) => {
  t.same([...MULTIPATHD_SOCKETS], ['/run/multipathd.socket', '@/org/kernel/linux/storage/multipathd'])
})

t.test('no multipathd: the stock multipath actions that need it answer so, and start nothing', async (t) => {
  for (const action of ['multipath.maps_json', 'multipath.paths']) {
    const { ack, result } = await h.run(action, {})
    t.ok(ack.accepted, `${action}: a valid writ`)
    t.equal(result?.status, 'refused', `${action}: refused before it ran`)
    t.equal(result?.refusal?.code, 'target_unavailable')
    t.match(result?.refusal?.message, /^multipathd is not running on this node \(nothing accepts connections on .*multipathd\.socket or @\/writ-test\/multipathd-[0-9a-f]+\); multipathd was not run$/, result?.refusal?.message ?? '')
    t.equal(result?.exit_code, null, 'no process exited: none was started')
  }
  const { result } = await runShow()
  t.equal(result?.refusal?.code, 'target_unavailable')
  t.notOk(existsSync(marker), 'the multipathd client was never started')
})

t.test('multipathd on the abstract socket only (multipath-tools 0.9, Debian 12): the client runs', async (t) => {
  await listenOn(abstractSocket)
  const probe = await probeMultipathd([pathSocket, abstractSocket])
  t.same(probe, { running: true, socket: abstractSocket })
  const { result } = await runShow()
  t.equal(result?.status, 'succeeded', result?.error ?? '')
  t.equal(result?.stdout, 'maps: none\n')
  t.ok(existsSync(marker), 'the client ran')
  rmSync(marker, { force: true })
})

t.test('an abstract socket bound at its exact length, as multipathd itself binds it (not padded, as Node would)', async (t) => {
  // Node cannot bind (or reach) an exact-length abstract name; python3's socket module can. Found by the lab (test/lab/stock-packs.lab.ts).
  const py = spawnSync('python3', ['--version'])
  if (py.error) { t.skip('python3 not on PATH: cannot bind an exact-length abstract socket here', () => {}); return }
  await stopListening()
  const exact = `@/writ-test/multipathd-exact-${randomBytes(6).toString('hex')}`
  const child = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\ns.bind(sys.argv[1].replace("@","\\0",1))\ns.listen(1)\nprint("ready",flush=True)\nsys.stdin.read()', exact], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { child.stdin?.end(); child.kill() })
  await new Promise<void>((resolve, reject) => { child.stdout?.once('data', () => resolve()); child.once('exit', (c) => reject(new Error(`python3 exited ${c}`))) })
  t.same(await probeMultipathd([pathSocket, exact]), { running: true, socket: exact }, 'the probe finds the listener')
  child.stdin?.end()
  await new Promise((r) => child.once('exit', r))
  t.equal((await probeMultipathd([pathSocket, exact])).running, false, 'and no longer once it is gone')
})

t.test('multipathd on the path socket only (multipath-tools 0.12+): the client runs', async (t) => {
  await listenOn(pathSocket)
  t.same(await probeMultipathd([pathSocket, abstractSocket]), { running: true, socket: pathSocket })
  const { result } = await runShow()
  t.equal(result?.status, 'succeeded', result?.error ?? '')
  t.ok(existsSync(marker), 'the client ran')
  rmSync(marker, { force: true })
})

t.test('a file left at the socket path with nothing listening (a multipathd that died) is not a running multipathd', async (t) => {
  await stopListening()
  writeFileSync(pathSocket, '')
  t.teardown(() => rmSync(pathSocket, { force: true }))
  const probe = await probeMultipathd([pathSocket, abstractSocket])
  t.equal(probe.running, false)
  const { result } = await runShow()
  t.equal(result?.refusal?.code, 'target_unavailable')
  t.notOk(existsSync(marker), 'the client was not started')
})
