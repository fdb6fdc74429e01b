/**
 * Packs read their credentials from the runner's host (emisar's redis pack:
 * "redis-cli authenticates with the password in REDISCLI_AUTH on the runner
 * host"), while a command's environment is scrubbed. `--inherit-env NAME`
 * (WRIT_INHERIT_ENV) passes exactly the named variables on: a real runner
 * over NATS, a pack whose action prints its environment.
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadRunnerConfig } from '@writ/node-runner'
import { startRunnerHarness, type RunnerHarness } from './helpers/runner-harness.js'

const hostEnv: NodeJS.ProcessEnv = { PACKTEST_TOKEN: 'inherited-credential-1', PACKTEST_OTHER: 'never-passed-on', LANG: 'C.UTF-8' }

let h: RunnerHarness
t.before(async () => {
  h = await startRunnerHarness({ extraConfig: { inheritEnv: ['PACKTEST_TOKEN', 'PACKTEST_UNSET', 'PACKTEST_DECLARED'] }, deps: { environment: () => hostEnv } })
  const pack = join(h.dir, 'packs', 'envshow')
  mkdirSync(join(pack, 'actions'), { recursive: true })
  writeFileSync(join(pack, 'pack.yaml'), 'schema_version: 1\nid: envshow\nname: Environment\nversion: 1.0.0\nactions: [actions/env.yaml]\n')
  writeFileSync(join(pack, 'actions', 'env.yaml'), `schema_version: 1
id: envshow.env
title: Print the environment
kind: exec
risk: low
side_effects: [None.]
execution:
  command: { binary: env, argv: [] }
  env: { PACKTEST_DECLARED: from-the-pack }
  timeout: 5s
examples: [{ title: all, args: {} }]
`)
})
t.teardown(async () => { await h.stop() })

t.test('a command gets the inherited variables and nothing else from the runner\'s environment', async (t) => {
  hostEnv.PACKTEST_DECLARED = 'from-the-host'
  const { result } = await h.run('envshow.env', {})
  t.equal(result?.status, 'succeeded', result?.error ?? '')
  const lines = (result?.stdout ?? '').trim().split('\n').sort()
  t.ok(lines.includes('PACKTEST_TOKEN=inherited-credential-1'), 'the named variable reached the command')
  t.notOk(lines.some((l) => l.startsWith('PACKTEST_OTHER=')), 'a variable nobody named did not')
  t.notOk(lines.some((l) => l.startsWith('PACKTEST_UNSET=')), 'a named variable the host does not set stays unset')
  t.ok(lines.includes('PACKTEST_DECLARED=from-the-pack'), 'the action\'s own execution.env wins over the host\'s copy')
})

t.test('the value is read when the run starts, not when the runner started', async (t) => {
  hostEnv.PACKTEST_TOKEN = 'rotated-credential-2'
  const { result } = await h.run('envshow.env', {})
  t.match(result?.stdout, /^PACKTEST_TOKEN=rotated-credential-2$/m)
})

t.test('a variable that changes what runs is never inherited: the runner does not start', async (t) => {
  const base = { WRIT_NODE_ID: 'n1', WRIT_PACKS: '/tmp', WRIT_TRUSTED_KEYS: '/tmp/k.pem' }
  for (const name of ['PATH', 'LD_PRELOAD', 'PYTHONPATH']) {
    t.throws(() => loadRunnerConfig({}, { ...base, WRIT_INHERIT_ENV: `PACKTEST_TOKEN,${name}` }), { name: 'RunnerConfigError', message: new RegExp(`--inherit-env: ${name} makes a program load or run other code`) }, name)
  }
  t.same(loadRunnerConfig({ 'inherit-env': ['REDISCLI_AUTH'] }, base).inheritEnv, ['REDISCLI_AUTH'], 'the flag sets it')
  t.same(loadRunnerConfig({}, { ...base, WRIT_INHERIT_ENV: 'PGPASSWORD, PGUSER' }).inheritEnv, ['PGPASSWORD', 'PGUSER'], 'and the environment, comma-separated')
})
