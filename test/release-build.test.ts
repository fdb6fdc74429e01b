/**
 * The release build: the single executables start without Node's module tree,
 * print their version and connect to a real nats-server; the packs tarball is
 * reproducible and loads in both; SHA256SUMS matches the files.
 * Skips (visibly) only when this Node cannot build a single executable.
 */
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { connect } from '@nats-io/transport-node'
import { generateSigningKeyPair } from '@writ/packs/protocol'
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.js'
import { eventually } from './helpers/cp-fake-runner.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const BUILD = join(ROOT, 'scripts', 'release', 'build.mjs')
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'node-runner', 'package.json'), 'utf8')) as { version: string }).version
const SUFFIX = `${process.platform}-${process.arch}`
const RUNNER = `writ-node-runner-${SUFFIX}`
const WRIT = `writ-${SUFFIX}`
const PACKS = `writ-packs-${VERSION}.tar.gz`

// Two single-executable builds (esbuild, postject) and their runs: a busy machine took past the
// suites' 3 minutes, so this file gets 7 (a guard against a hang, not a measure of speed).
t.setTimeout(420_000)

const tmp = mkdtempSync(join(tmpdir(), 'writ-release-test-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

function build(out: string, ...args: string[]): { status: number | null, output: string, ms: number } {
  const t0 = performance.now()
  const r = spawnSync(process.execPath, [BUILD, '--out', out, ...args], { encoding: 'utf8', timeout: 240_000 })
  return { status: r.status, output: `${r.stdout}${r.stderr}`, ms: performance.now() - t0 }
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')
const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`

/** A minimal operator pack, as an operator's own pack folder would hold. */
function writeOperatorPacks(dir: string): void {
  mkdirSync(join(dir, 'site', 'actions'), { recursive: true })
  writeFileSync(join(dir, 'site', 'pack.yaml'), `schema_version: 1
id: site
name: Site packs
version: 2.3.0
description: The operator's own actions.
actions: [actions/uptime.yaml]
`)
  writeFileSync(join(dir, 'site', 'actions', 'uptime.yaml'), `schema_version: 1
id: site.uptime
title: Uptime
kind: exec
risk: low
side_effects: [None.]
args: []
execution:
  command: { binary: cat, argv: ["/proc/uptime"] }
  timeout: 5s
examples: [{ title: uptime, args: {} }]
`)
}

interface Proc { child: ChildProcess, output(): string, waitFor(re: RegExp, ms: number): Promise<{ match: RegExpExecArray, ms: number }>, stop(): Promise<number | null> }

function start(file: string, args: string[], env: Record<string, string> = {}): Proc {
  const t0 = performance.now()
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let out = ''
  const waiters: Array<() => void> = []
  const onData = (d: Buffer): void => { out += d.toString(); for (const w of [...waiters]) w() }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => { for (const w of [...waiters]) w(); r(code) }))
  return {
    child,
    output: () => out,
    waitFor: (re, ms) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => { done(); reject(new Error(`no ${re} within ${ms} ms:\n${out}`)) }, ms)
      const check = (): void => {
        const m = re.exec(out)
        if (m) { done(); resolve({ match: m, ms: performance.now() - t0 }); return }
        if (child.exitCode !== null || child.signalCode !== null) { done(); reject(new Error(`exited (${child.exitCode ?? child.signalCode}) before ${re}:\n${out}`)) }
      }
      const done = (): void => { clearTimeout(timer); waiters.splice(waiters.indexOf(check), 1) }
      waiters.push(check)
      check()
    }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

const out1 = join(tmp, 'build1')
const first = build(out1)
const dir1 = join(out1, `v${VERSION}`)

if (first.status === 3) {
  t.comment(`SKIP: this platform cannot build a Node single executable: ${first.output.trim()}`)
  t.pass('release build skipped: no single-executable support here')
} else {
  t.equal(first.status, 0, `the release build succeeds (${(first.ms / 1000).toFixed(1)} s)`, { output: first.output })
  t.comment(first.output.trim().split('\n').filter((l) => /bytes|release v/.test(l)).join('\n'))

  t.test('SHA256SUMS lists every artifact with its sha256, in sha256sum format', async (t) => {
    const lines = readFileSync(join(dir1, 'SHA256SUMS'), 'utf8').trimEnd().split('\n')
    const entries = lines.map((l) => /^([0-9a-f]{64}) {2}(\S+)$/.exec(l))
    t.ok(entries.every(Boolean), 'every line is "<sha256>  <name>"')
    t.same(entries.map((m) => m?.[2]), [WRIT, RUNNER, PACKS].sort(), 'the three artifacts the jobs fetch, by their contract names')
    for (const m of entries) if (m) t.equal(sha256(join(dir1, m[2] as string)), m[1], `${m[2]} matches`)
    const check = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir1, encoding: 'utf8' })
    if (check.error) t.comment('sha256sum not on PATH; checked in-process only')
    else t.equal(check.status, 0, `sha256sum -c agrees: ${check.stdout.trim().replace(/\n/g, '; ')}`)
  })

  t.test('the build is reproducible; the packs tarball carries stock and operator packs', async (t) => {
    const again = build(join(tmp, 'build2'))
    t.equal(again.status, 0, 'a second build succeeds', { output: again.output })
    for (const name of [RUNNER, WRIT, PACKS]) {
      const h = sha256(join(dir1, name))
      t.equal(sha256(join(tmp, 'build2', `v${VERSION}`, name)), h, `${name}: two builds of the same input give the same bytes (sha256 ${h.slice(0, 16)}…)`)
    }
    const a = sha256(join(dir1, PACKS))

    const operator = join(tmp, 'operator-packs')
    writeOperatorPacks(operator)
    const withExtra = [build(join(tmp, 'build3'), '--only', 'packs', '--extra-packs', operator), build(join(tmp, 'build4'), '--only', 'packs', '--extra-packs', operator)]
    for (const b of withExtra) t.equal(b.status, 0, 'a build with the operator folder succeeds', { output: b.output })
    const [x, y] = ['build3', 'build4'].map((d) => sha256(join(tmp, d, `v${VERSION}`, PACKS)))
    t.equal(x, y, 'with the operator folder too, the same input gives the same bytes')
    t.not(x, a, 'and the operator packs change the artifact (and so its checksum)')
    const list = spawnSync('tar', ['-tzf', join(tmp, 'build3', `v${VERSION}`, PACKS)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)
    for (const p of ['writ-packs.json', 'debugging/pack.yaml', 'storage/pack.yaml', 'site/pack.yaml', 'site/actions/uptime.yaml']) t.ok(list.includes(p), `contains ${p}`)
    const verbose = spawnSync('tar', ['-tvzf', join(tmp, 'build3', `v${VERSION}`, PACKS)], { encoding: 'utf8' }).stdout
    t.ok(verbose.split('\n').filter(Boolean).every((l) => l.includes('root/root') && l.includes('1970-01-01')), 'fixed owner and mtime on every entry')

    // Mistakes are refused, not shipped.
    cpSync(join(operator, 'site'), join(tmp, 'clash', 'docker'), { recursive: true })
    const clash = build(join(tmp, 'build5'), '--only', 'packs', '--extra-packs', join(tmp, 'clash'))
    t.not(clash.status, 0, 'an operator folder named like a stock pack is refused')
    t.match(clash.output, /"docker" is used twice/, 'naming the clash')
    mkdirSync(join(tmp, 'broken', 'bad'), { recursive: true })
    writeFileSync(join(tmp, 'broken', 'bad', 'pack.yaml'), 'schema_version: 1\nid: Bad Id\n')
    const broken = build(join(tmp, 'build6'), '--only', 'packs', '--extra-packs', join(tmp, 'broken'))
    t.not(broken.status, 0, 'a pack that does not load is refused')
    t.match(broken.output, /packs do not load/, 'saying why')
  })

  t.test('each executable prints its version, starts from the packs artifact and connects to a real NATS', async (t) => {
    for (const [name, expected] of [[RUNNER, `writ-node-runner ${VERSION}`], [WRIT, `writ ${VERSION}`]] as const) {
      const t0 = performance.now()
      const r = spawnSync(join(dir1, name), ['--version'], { encoding: 'utf8', timeout: 30_000, env: { PATH: '/usr/bin:/bin' } })
      t.equal(r.stdout.trim(), expected, `${name} --version (${(performance.now() - t0).toFixed(0)} ms)`)
      t.equal(r.stderr, '', `${name} --version prints no warning`)
    }

    // Both load the one artifact, unpacked as Nomad's artifact block does.
    const packsDir = join(tmp, 'alloc', 'local', 'packs')
    mkdirSync(packsDir, { recursive: true })
    t.equal(spawnSync('tar', ['-xzf', join(dir1, PACKS), '-C', packsDir]).status, 0, 'the packs tarball unpacks')
    const manifest = JSON.parse(readFileSync(join(packsDir, 'writ-packs.json'), 'utf8')) as { packs: Array<{ id: string, digest: string }> }

    const nats: NatsServerHandle = await startNatsServer()
    t.teardown(() => nats.stop())
    const keys = generateSigningKeyPair()
    const secrets = join(tmp, 'alloc', 'secrets')
    mkdirSync(secrets, { recursive: true })
    writeFileSync(join(secrets, 'signing.pem'), keys.privatePem, { mode: 0o600 })
    writeFileSync(join(secrets, 'trusted-keys.pem'), keys.publicPem)
    const token = `writ-release-test-${Date.now()}`
    writeFileSync(join(secrets, 'writ.yaml'), [
      'listen: { host: 127.0.0.1, port: 0 }',
      `nats: { servers: ["${nats.url}"] }`,
      `packs: { dirs: ["${packsDir}"] }`,
      `signing: { key_file: "${join(secrets, 'signing.pem')}" }`,
      'principals:',
      `  - { id: ops, kind: operator, token_sha256: "${createHash('sha256').update(token).digest('hex')}" }`,
    ].join('\n'))

    // A bare environment: no Node on PATH, no NODE_* variables.
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: tmp, NODE_OPTIONS: '', NODE_PATH: '' }
    const cwd = join(tmp, 'alloc')

    // Control plane: spawn → "control plane started" (NATS + JetStream set up) → /readyz 200.
    const cp = start(join(dir1, WRIT), ['serve', '--config', join(secrets, 'writ.yaml')], env)
    t.teardown(() => cp.stop())
    const started = await cp.waitFor(/"msg":"control plane started"/, 30_000)
    const listening = await cp.waitFor(/"address":"(http:\/\/[^"]+)".*"msg":"control plane listening"/, 30_000)
    const url = listening.match[1] as string
    let ready: { ms: number, body: unknown } | undefined
    const t0 = performance.now()
    while (!ready && performance.now() - t0 < 15_000) {
      const res = await fetch(`${url}/readyz`).catch(() => undefined)
      if (res?.status === 200) ready = { ms: listening.ms + (performance.now() - t0), body: await res.json() }
      else await new Promise((r) => setTimeout(r, 20))
    }
    t.ok(ready, 'the control plane answers /readyz 200')
    t.match(ready?.body, { ok: true, checks: { nats: true, catalog: true } }, 'connected to NATS, catalog loaded from the artifact')

    // Runner: spawn → "connected to NATS" → its heartbeat arrives on the real server.
    const nc = await connect({ servers: nats.url })
    t.teardown(() => nc.close())
    const nodeId = 'release-test-node'
    const sub = nc.subscribe(`writ.v1.node.${nodeId}.heartbeat`, { max: 1 })
    const heartbeat = (async () => { for await (const m of sub) return m.json<{ node_id: string, version: string, packs: Array<{ id: string, digest: string }> }>() })()
    const runner = start(join(dir1, RUNNER), [
      'run', '--nats-url', nats.url, '--node-id', nodeId, '--packs', packsDir,
      '--trusted-keys', join(secrets, 'trusted-keys.pem'), '--journal', join(cwd, 'runner-journal.jsonl'),
      '--heartbeat-interval-ms', '500', '--metrics-listen', '127.0.0.1:0',
    ], env)
    t.teardown(() => runner.stop())
    const connected = await runner.waitFor(/"msg":"connected to NATS"/, 30_000)
    const hb = await Promise.race([heartbeat, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no heartbeat:\n${runner.output()}`)), 15_000))])
    t.equal(hb?.node_id, nodeId, 'the runner\'s heartbeat arrives over NATS')
    t.equal(hb?.version, VERSION, 'reporting the release version')
    t.same(Object.fromEntries((hb?.packs ?? []).map((p) => [p.id, p.digest])), Object.fromEntries(manifest.packs.map((p) => [p.id, p.digest])), 'with exactly the packs (and digests) the artifact\'s writ-packs.json names')

    // The writ executable as the operator's CLI: the control plane sees the node, same pack bytes.
    // The heartbeat above went to NATS; wait until the control plane has taken one in too.
    const online = async (): Promise<boolean> => {
      const res = await fetch(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${token}` } })
      return ((await res.json()) as { nodes: Array<{ id: string, online: boolean }> }).nodes.some((n) => n.id === nodeId && n.online)
    }
    await eventually(online, 10_000, 'the control plane to see the runner online')
    const nodes = spawnSync(join(dir1, WRIT), ['nodes', '--json'], { encoding: 'utf8', timeout: 30_000, env: { ...env, WRIT_URL: url, WRIT_TOKEN: token } })
    t.equal(nodes.status, 0, 'writ nodes --json (the same executable as the operator CLI) succeeds', { stderr: nodes.stderr })
    const listed = (JSON.parse(nodes.stdout || '[]') as Array<{ id: string, online: boolean, packs: Array<{ id: string, matches_catalog: boolean }> }>).find((n) => n.id === nodeId)
    t.ok(listed?.online, 'the control plane lists the runner online')
    t.ok(listed && listed.packs.length === manifest.packs.length && listed.packs.every((p) => p.matches_catalog), 'and every one of its packs matches the control plane\'s catalog (same artifact, same digests)')

    const sizes = { [RUNNER]: statSync(join(dir1, RUNNER)).size, [WRIT]: statSync(join(dir1, WRIT)).size, [PACKS]: statSync(join(dir1, PACKS)).size }
    t.comment(`${RUNNER}: ${sizes[RUNNER]} bytes (${mib(sizes[RUNNER] as number)}), spawn → "connected to NATS" ${connected.ms.toFixed(0)} ms`)
    t.comment(`${WRIT}: ${sizes[WRIT]} bytes (${mib(sizes[WRIT] as number)}), spawn → "control plane started" ${started.ms.toFixed(0)} ms, → listening ${listening.ms.toFixed(0)} ms, → /readyz 200 ${ready?.ms.toFixed(0)} ms`)
    t.comment(`${PACKS}: ${sizes[PACKS]} bytes`)
    t.ok(connected.ms < 10_000 && (ready?.ms ?? Infinity) < 10_000, 'both reach "connected" within 10 s')

    t.equal(await runner.stop(), 0, 'the runner drains and exits 0 on SIGTERM')
    t.equal(await cp.stop(), 0, 'the control plane exits 0 on SIGTERM')
  })
}
