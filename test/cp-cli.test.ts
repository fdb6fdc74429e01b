import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { hashToken, AUDIT_STREAM } from '@writ/control-plane'
import { startCpSuite } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'control-plane', 'dist', 'cli.js')

function writ(args: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr })
    })
  })
}

t.test('keys and tokens', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-keys-'))
  const res = await writ(['keys', 'generate', '--out', dir])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /key id [0-9a-f]{16}/)
  t.equal(statSync(join(dir, 'writ-signing.pem')).mode & 0o777, 0o600, 'private key is owner-only')
  t.ok(existsSync(join(dir, 'writ-signing.pub.pem')))
  t.equal((await writ(['keys', 'generate', '--out', dir])).code, 2, 'never overwrites a signing key')
  const tok = await writ(['token', 'generate', '--kind', 'operator'])
  const token = /token:\s+(\S+)/.exec(tok.stdout)?.[1] as string
  const sha = /token_sha256: ([0-9a-f]{64})/.exec(tok.stdout)?.[1]
  t.equal(sha, hashToken(token))
})

t.test('the CLI runs an action, lists nodes and actions, and verifies the audit chain', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-1', nodeName: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 300 })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.onlineCount === 1, 3000, 'node online')
  const env = { WRIT_URL: url, WRIT_TOKEN: fx.tokens.agent, WRIT_NATS_URL: nats.url }

  const nodes = await writ(['nodes'], env)
  t.match(nodes.stdout, /online\s+web-1\s+node-1\s+packs: testops/)
  const actions = await writ(['actions', 'echo'], env)
  t.match(actions.stdout, /testops\.echo\s+low\s+Echo a message/)
  t.notMatch(actions.stdout, /testops\.sleep/)

  const run = await writ(['run', 'testops.sleep', '--node', 'web-1', '--arg', 'seconds=1', '--reason', 'cli test'], env)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /testops\.sleep \{"seconds":1\}/, 'live output printed (the integer argument was typed by the contract)')
  t.match(run.stderr, /succeeded/)
  const denied = await writ(['run', 'testops.list', '--node', 'web-1', '--reason', 'no'], env)
  t.equal(denied.code, 2)
  t.match(denied.stderr, /WRIT_ERR_POLICY_DENIED/)
  t.equal((await writ(['nodes'], { ...env, WRIT_TOKEN: 'wrong' })).code, 2)

  const keys = ['--trusted-keys', fx.publicKeyFile]
  t.equal((await writ(['audit', 'verify'], env)).code, 2, 'verify without trusted keys is a usage error: nothing would be proven')
  const ok = await writ(['audit', 'verify', ...keys], env)
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /audit chain OK \(stream WRIT_AUDIT at .*\)\n {2}events: 5, sequence 1–5/)

  const exported = await writ(['audit', 'export'], env)
  const lines = exported.stdout.trim().split('\n')
  t.equal(lines.length, 5, "requested, dispatched, finished; the denied run: requested, rejected")
  const file = join(fx.dir, 'audit.jsonl')
  writeFileSync(file, exported.stdout)
  const fromFile = await writ(['audit', 'verify', ...keys, '--file', file])
  t.equal(fromFile.code, 0, `the export verifies ${fromFile.stderr}`)

  t.test('one flipped byte in one exported event is found and named', async (t) => {
    const target = lines[2] as string
    const at = target.indexOf('"reason"') >= 0 ? target.indexOf('"reason"') + 11 : 40
    const flipped = target.slice(0, at) + String.fromCharCode(target.charCodeAt(at) ^ 1) + target.slice(at + 1)
    const bad = join(fx.dir, 'audit-flipped.jsonl')
    writeFileSync(bad, [...lines.slice(0, 2), flipped, ...lines.slice(3)].join('\n'))
    const res = await writ(['audit', 'verify', '--trusted-keys', fx.publicKeyFile, '--file', bad])
    t.equal(res.code, 1)
    t.match(res.stderr, /audit chain BROKEN .*\n {2}- chain broken at event 3 \(position 3/)
  })

  t.test('the stream refuses to delete an event', async (t) => {
    const nc = await connect({ servers: nats.url })
    t.teardown(() => nc.close())
    const jsm = await jetstreamManager(nc)
    await t.rejects(jsm.streams.deleteMessage(AUDIT_STREAM, 4), /message delete not permitted/)
    t.equal((await writ(['audit', 'verify', ...keys], env)).code, 0, 'and the chain is whole')
  })

  t.test('the file being verified is left untouched', async (t) => {
    t.equal(readFileSync(file, 'utf8'), exported.stdout)
  })
})
