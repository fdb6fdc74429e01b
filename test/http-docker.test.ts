/**
 * The stock `docker` pack against a Docker Engine double on a unix socket:
 * the API version is asked once and prefixes every path, list and inspect
 * come back as JSON, and log streams are split into stdout and stderr from
 * real multiplexed frames — whole, torn across TCP chunks, labelled or not,
 * from a TTY container, and over the output cap.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { encodeFrames, selectFrames, startDockerDouble, type DockerDouble, type LogFrame } from './doubles/docker-api.js'
import { outcomeOf, runHttpAction } from './helpers/run-http-action.js'
import { closeHttpClients } from '../node-runner/dist/executors/http-executor.js'
import { DockerStreamDemuxer } from '../node-runner/dist/clients/docker-stream-demuxer.js'

t.teardown(() => closeHttpClients())

async function withDocker(t: { teardown: (fn: () => unknown) => void }, opts: Parameters<typeof startDockerDouble>[0] = {}): Promise<DockerDouble> {
  const d = await startDockerDouble(opts)
  t.teardown(() => d.close())
  return d
}
const run = (d: DockerDouble, id: string, args: Record<string, unknown>, extra = {}) =>
  runHttpAction(id, args, { dockerSocket: d.socketPath, ...extra })

/** What a logs call with the pack's query (stdout, stderr, timestamps, tail) must yield per stream. */
function expected(d: DockerDouble, tail = 200): { stdout: string, stderr: string } {
  const frames = selectFrames(d.logFrames, { stdout: '1', stderr: '1', timestamps: '1', tail: String(tail) })
  const join = (s: LogFrame['stream']) => Buffer.concat(frames.filter((f) => f.stream === s).map((f) => f.payload)).toString('utf8')
  return { stdout: join(1), stderr: join(2) }
}

t.test('the API version is asked once (GET /version) and prefixes every path', async (t) => {
  const d = await withDocker(t)
  const first = outcomeOf(await run(d, 'docker.ps', {}))
  t.equal(first.status, 'succeeded', first.error ?? 'succeeded')
  await run(d, 'docker.ps', { all: true })
  await run(d, 'docker.inspect', { container: 'boring_feynman' })
  t.same(d.requests.map((r) => `${r.method} ${r.path}`), [
    'GET /version',
    `GET /v${d.apiVersion}/containers/json`,
    `GET /v${d.apiVersion}/containers/json`,
    `GET /v${d.apiVersion}/containers/boring_feynman/json`,
  ])
  t.equal(d.apiVersion, '1.24')
})

t.test('docker.ps lists running containers, or all of them with all=true', async (t) => {
  const d = await withDocker(t)
  const running = outcomeOf(await run(d, 'docker.ps', {}))
  t.same(JSON.parse(running.stdout), [], 'every container in the sample has exited')
  t.same(d.requests.at(-1)?.query, { all: 'false' })
  const all = outcomeOf(await run(d, 'docker.ps', { all: true }))
  const list = JSON.parse(all.stdout) as Array<{ Id: string, Names: string[], State: string }>
  t.same(list.map((c) => c.Id), d.containers.map((c) => c.Id))
  t.same(list.map((c) => c.Names[0]), ['/boring_feynman', '/coolName', '/sleepy_dog', '/running_cat'])
  t.same(d.requests.at(-1)?.query, { all: 'true' })
})

t.test('docker.inspect by name or ID prefix; an unknown container is a 404 with the daemon message', async (t) => {
  const d = await withDocker(t)
  const byName = outcomeOf(await run(d, 'docker.inspect', { container: 'sleepy_dog' }))
  t.equal(byName.status, 'succeeded', byName.error ?? 'succeeded')
  t.equal((JSON.parse(byName.stdout) as { Id: string }).Id, '3176a2479c92')
  const byId = outcomeOf(await run(d, 'docker.inspect', { container: '8dfa' }))
  t.equal((JSON.parse(byId.stdout) as { Name: string }).Name, '/boring_feynman')
  const missing = outcomeOf(await run(d, 'docker.inspect', { container: 'victoriametrics' }))
  t.equal(missing.status, 'failed')
  t.equal(missing.error, 'docker: 404 No such container: victoriametrics')
  t.equal(missing.exitCode, null)
})

t.test('bad container references are refused before any request', async (t) => {
  const d = await withDocker(t)
  for (const container of ['../../version', '/boring_feynman', '-f', 'a b', 'x;id', 'c?all=1', 'a'.repeat(129), '']) {
    const r = await run(d, 'docker.logs', { container })
    t.equal(r.refused, true, JSON.stringify(container))
  }
  t.equal((await run(d, 'docker.logs', { container: 'x', tail: 0 })).refused, true, 'tail ≥ 1')
  t.equal((await run(d, 'docker.logs', { container: 'x', tail: 'all' })).refused, true, 'tail is a number')
  t.equal(d.requests.length, 0)
})

t.test('docker.logs demultiplexes the frames into stdout and stderr', async (t) => {
  const d = await withDocker(t)
  const out = outcomeOf(await run(d, 'docker.logs', { container: 'boring_feynman' }))
  t.equal(out.status, 'succeeded', out.error ?? 'succeeded')
  const want = expected(d)
  t.equal(out.stdout, want.stdout, 'stdout is every stdout payload, in order, nothing of the headers')
  t.equal(out.stderr, want.stderr, 'stderr is the stderr frame')
  t.match(out.stdout, /^2019-11-14T10:00:00\.000000000Z \u001b\[32minfo\u001b\[39m Starting cache DB/)
  t.match(out.stderr, /warn: cache DB write took 2300ms/)
  t.notMatch(out.stdout, /[\u0000-\u0002]\u0000\u0000\u0000/, 'no frame header leaked into the text')
  t.same(out.chunks, { stdout: out.stdout, stderr: out.stderr }, 'live chunks carry the same split')
  t.equal(out.stdoutSha256, createHash('sha256').update(want.stdout).digest('hex'))
  const req = d.requests.at(-1)
  t.equal(req?.path, `/v${d.apiVersion}/containers/boring_feynman/logs`)
  t.same(req?.query, { stdout: '1', stderr: '1', timestamps: '1', tail: '200' })

  const tail = outcomeOf(await run(d, 'docker.logs', { container: 'boring_feynman', tail: 2, since: 1573725600 }))
  t.same({ stdout: tail.stdout, stderr: tail.stderr }, expected(d, 2), 'tail=2: the last stdout line and the stderr line')
  t.same(d.requests.at(-1)?.query, { stdout: '1', stderr: '1', timestamps: '1', tail: '2', since: '1573725600' })
})

t.test('frames torn across TCP chunks come out the same', async (t) => {
  const d = await withDocker(t, { splitWrites: true })
  const out = outcomeOf(await run(d, 'docker.logs', { container: 'coolName' }))
  t.equal(out.status, 'succeeded', out.error ?? 'succeeded')
  t.same({ stdout: out.stdout, stderr: out.stderr }, expected(d))
})

t.test('a stream labelled application/vnd.docker.multiplexed-stream (API ≥ 1.42) is read the same', async (t) => {
  const d = await withDocker(t, { labelStreams: true, splitWrites: true })
  const out = outcomeOf(await run(d, 'docker.logs', { container: 'coolName' }))
  t.same({ stdout: out.stdout, stderr: out.stderr }, expected(d))
})

t.test('a TTY container sends raw text: all of it is stdout', async (t) => {
  for (const labelStreams of [false, true]) {
    const d = await withDocker(t, { tty: true, labelStreams })
    const out = outcomeOf(await run(d, 'docker.logs', { container: 'running_cat' }))
    t.equal(out.status, 'succeeded', out.error ?? 'succeeded')
    const want = expected(d)
    const frames = selectFrames(d.logFrames, { stdout: '1', stderr: '1', timestamps: '1', tail: '200' })
    t.equal(out.stdout, Buffer.concat(frames.map((f) => f.payload)).toString('utf8'), `labelled: ${labelStreams}`)
    t.equal(out.stderr, '')
    t.ok(out.stdout.includes(want.stderr), 'the TTY merged stderr into the one stream')
  }
})

t.test('output over the cap is cut and marked; the hash covers the full output', async (t) => {
  const d = await withDocker(t, { splitWrites: true })
  const out = outcomeOf(await run(d, 'docker.logs', { container: 'boring_feynman' }, { maxStdoutBytes: 100 }))
  const want = expected(d)
  t.equal(out.status, 'succeeded', 'a cap is not a failure')
  t.equal(out.stdoutTruncated, true)
  t.equal(out.stdoutBytes, Buffer.byteLength(want.stdout), 'the byte count is of everything produced')
  t.equal(out.stdoutSha256, createHash('sha256').update(want.stdout).digest('hex'), 'sha256 of the full stdout')
  t.ok(out.stdout.startsWith(Buffer.from(want.stdout).subarray(0, 100).toString('utf8')))
  t.match(out.stdout, /\[writ: output truncated at 100 bytes of \d+\]$/)
  t.equal(out.stderr, want.stderr, 'stderr has its own cap')
  t.equal(out.stderrTruncated, false)
})

t.test('an unreachable daemon socket is a failed run', async (t) => {
  const out = outcomeOf(await runHttpAction('docker.ps', {}, { dockerSocket: '/nonexistent/writ-test/docker.sock' }))
  t.equal(out.status, 'failed')
  t.match(out.error, /^docker: no Docker daemon at \/nonexistent\/writ-test\/docker.sock: .*ENOENT/)
})

t.test('the demultiplexer, fed byte by byte and cut short', async (t) => {
  const frames: LogFrame[] = [
    { stream: 1, payload: Buffer.from('héllo\n') },
    { stream: 2, payload: Buffer.from('oops\n') },
    { stream: 1, payload: Buffer.alloc(0) },
    { stream: 1, payload: Buffer.from('bye\n') },
  ]
  const wire = encodeFrames(frames)
  const got = { stdout: [] as Buffer[], stderr: [] as Buffer[] }
  const demux = new DockerStreamDemuxer('sniff', { stdout: (b) => got.stdout.push(Buffer.from(b)), stderr: (b) => got.stderr.push(Buffer.from(b)) })
  for (const byte of wire) demux.push(Buffer.from([byte]))
  t.same(demux.end(), { framing: 'multiplexed' })
  t.equal(Buffer.concat(got.stdout).toString('utf8'), 'héllo\nbye\n')
  t.equal(Buffer.concat(got.stderr).toString('utf8'), 'oops\n')

  const cut = new DockerStreamDemuxer('multiplexed', { stdout: () => {}, stderr: () => {} })
  cut.push(wire.subarray(0, wire.length - 2))
  t.match(cut.end().problem, /stream ended inside a frame \(2 payload bytes missing\)/)

  const daemonError = new DockerStreamDemuxer('multiplexed', { stdout: () => {}, stderr: () => {} })
  daemonError.push(encodeFrames([{ stream: 3, payload: Buffer.from('error from daemon in stream: log driver gone\n') }]))
  t.match(daemonError.end().problem, /daemon error in stream: .*log driver gone/)

  const raw = new DockerStreamDemuxer('sniff', { stdout: (b) => got.stdout.push(Buffer.from(b)), stderr: () => {} })
  got.stdout.length = 0
  raw.push(Buffer.from('plain terminal text\r\n'))
  t.same(raw.end(), { framing: 'raw' })
  t.equal(Buffer.concat(got.stdout).toString('utf8'), 'plain terminal text\r\n')
})
