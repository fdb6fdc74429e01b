/**
 * storage.csi_volume_ls on a client whose Nomad data_dir is not
 * /opt/nomad/data: the stock pack names `{{ runner.nomad_data_dir }}`, the
 * runner fills it in from its own setting (--nomad-data-dir, which the job
 * takes from the module's nomad_data_dir), never from the writ. One pack,
 * one digest on every node; the listing stays confined to the resolved root.
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadPacks } from '@writ/packs'
import { loadRunnerConfig, RunnerConfigError } from '@writ/node-runner'
import { startRunnerHarness, STOCK_PACKS, type RunnerHarness } from './helpers/runner-harness.js'

const dataDir = mkdtempSync(join(tmpdir(), 'writ-nomad-data-'))
const csi = join(dataDir, 'client', 'csi')
mkdirSync(join(csi, 'node', 'org.democratic-csi.iscsi', 'staging', 'default', 'vm-data', 'rw-file-system-single-node-writer'), { recursive: true })
writeFileSync(join(csi, 'node', 'org.democratic-csi.iscsi', 'csi.sock'), '')
symlinkSync('/etc', join(csi, 'escape'))
let h: RunnerHarness
t.before(async () => { h = await startRunnerHarness({ extraConfig: { nomadDataDir: dataDir } }) })
t.teardown(async () => { await h?.stop(); rmSync(dataDir, { recursive: true, force: true }) })

t.test('the listing comes from this runner\'s data_dir', async (t) => {
  const all = await h.run('storage.csi_volume_ls', {})
  t.equal(all.result?.status, 'succeeded', all.result?.error ?? '')
  const listing = all.result?.parsed as { root: string, entries: Array<{ path: string, type: string }> }
  t.equal(listing.root, csi, 'the root is <data_dir>/client/csi of this host')
  t.ok(listing.entries.some((e) => e.path === 'node/org.democratic-csi.iscsi/csi.sock'), 'the plugin socket is listed')
  t.ok(listing.entries.some((e) => e.path === 'node/org.democratic-csi.iscsi/staging/default/vm-data'), 'and the staged volume')
  const staging = await h.run('storage.csi_volume_ls', { path: 'node/org.democratic-csi.iscsi/staging' })
  t.equal(staging.result?.status, 'succeeded')
})

t.test('and stays confined to it', async (t) => {
  const link = await h.run('storage.csi_volume_ls', { path: 'escape' })
  t.equal(link.result?.status, 'failed', 'a symlink out of the root is not followed')
  t.match(link.result?.error, /outside/)
  const up = await h.run('storage.csi_volume_ls', { path: '../../..' })
  t.equal(up.ack.accepted, false, '".." is refused before running')
})

t.test('the setting is the runner\'s, absolute, and packs can only name known runner directories', async (t) => {
  const env = { WRIT_NODE_ID: 'n1', WRIT_PACKS: STOCK_PACKS, WRIT_TRUSTED_KEYS: '/dev/null' }
  t.equal(loadRunnerConfig({}, env).nomadDataDir, '/opt/nomad/data', 'HashiCorp\'s packages\' data_dir by default')
  t.equal(loadRunnerConfig({ 'nomad-data-dir': '/srv/nomad' }, env).nomadDataDir, '/srv/nomad')
  t.equal(loadRunnerConfig({}, { ...env, WRIT_NOMAD_DATA_DIR: '/var/lib/nomad' }).nomadDataDir, '/var/lib/nomad')
  for (const bad of ['relative/nomad', '/srv/../etc']) {
    t.throws(() => loadRunnerConfig({ 'nomad-data-dir': bad }, env), RunnerConfigError, `refuses --nomad-data-dir ${bad}`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'writ-list-root-pack-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const roots: Array<[string, RegExp | null]> = [
    ['"{{ runner.nomad_data_dir }}/client/csi"', null],
    ['"{{ runner.home }}/x"', /"home" is not a runner directory/],
    ['"{{ runner.nomad_data_dir }}/../../etc"', /has a "\.\." segment/],
    ['"{{ runner.nomad_data_dir }}x"', /after \{\{ runner\.nomad_data_dir \}\} comes "\/…" or nothing/],
    ['"{{ runner.nomad_data_dir }}/{{ args.path }}"', /second template/],
    ['relative/dir', /expected an absolute path, or \{\{ runner\.<dir> \}\}/],
  ]
  roots.forEach(([root], i) => {
    const p = join(dir, `p${i}`)
    mkdirSync(join(p, 'actions'), { recursive: true })
    writeFileSync(join(p, 'pack.yaml'), `schema_version: 1\nid: p${i}\nname: p\nversion: 1.0.0\nactions: [actions/ls.yaml]\n`)
    writeFileSync(join(p, 'actions', 'ls.yaml'), `schema_version: 1\nid: p${i}.ls\ntitle: ls\nkind: list\nrisk: low\nside_effects: [None.]\nargs: [{ name: path, type: string, required: false }]\nexecution:\n  list: { root: ${root}, path: "{{ args.path }}" }\n  timeout: 5s\n`)
  })
  const loaded = loadPacks(roots.map((_, i) => join(dir, `p${i}`)))
  roots.forEach(([root, error], i) => {
    const errors = loaded.errors.filter((e) => e.pack === `p${i}` || e.file.includes(`/p${i}/`)).map((e) => e.message).join(' | ')
    if (error === null) t.equal(errors, '', `root ${root} loads`)
    else t.match(errors, error, `root ${root} is refused: ${errors}`)
  })
})
