// A throwaway nats-server -js on a free loopback port for one benchmark run.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export async function freePort() {
  return new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) }) })
}

export async function startNats() {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-nats-'))
  writeFileSync(join(dir, 'nats.conf'), `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, 'js')}" }\n`)
  const proc = spawn('nats-server', ['-c', join(dir, 'nats.conf')], { stdio: 'ignore' })
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((r) => { const c = connect(port, '127.0.0.1'); c.once('connect', () => { c.destroy(); r(true) }); c.once('error', () => r(false)) })
    if (up) break
    await new Promise((r) => setTimeout(r, 50))
  }
  return { url: `nats://127.0.0.1:${port}`, pid: proc.pid, stop: async () => { proc.kill(); await new Promise((r) => proc.once('exit', r)); rmSync(dir, { recursive: true, force: true }) } }
}

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}
