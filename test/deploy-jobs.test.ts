/**
 * Each job's shape as the design asks: the runner a raw_exec host agent with
 * its argv and env in plain sight, the CSI node plugin behind the mkfs guard,
 * the multipath watchdog's flags and host access, and the agent settings that
 * ship as documented snippets.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { groups, hcl, jobsDir, onlyJob, root, tasks, tfDir, type Json } from './helpers/deploy-files.js'
t.test('node runner: a raw_exec host agent in the writ namespace, its argv and env in plain sight, workload identity on the Task API', async (t) => {
  const doc = await hcl(join(jobsDir, 'writ-node-runner.nomad.hcl'))
  const { job } = onlyJob(doc)
  t.equal(job.namespace, '${var.namespace}', 'runs in the writ namespace')
  t.equal(doc.variable.namespace[0].default, 'writ')
  const task = tasks(groups(job)[0]!.group)[0]!.task
  t.equal(task.driver, 'raw_exec', 'the host agent runs on the host (raw_exec), not in a container')
  t.notOk('user' in task, 'no user: the stock actions need root (dmesg, multipath, blkid, the Docker socket)')
  const cfg = task.config[0]
  t.same(Object.keys(cfg).sort(), ['args', 'command'], 'config is exactly command + args: no wrapper, no image, no entrypoint')
  t.equal(cfg.command, 'local/bin/writ-node-runner', 'the release executable from the artifact')
  const args = cfg.args as string[]
  t.equal(args[0], 'run')
  for (const flag of ['--packs', '--trusted-keys', '--nats-creds', '--journal', '--docker-socket', '--metrics-listen']) t.ok(args.includes(flag), `runner gets ${flag}`)
  t.notOk(args.includes('--allow-shell-packs'), 'shell packs stay off')
  t.equal(args[args.indexOf('--packs') + 1], '${NOMAD_TASK_DIR}/packs', 'packs from the artifact, by absolute task path')
  t.equal(args[args.indexOf('--trusted-keys') + 1], '${NOMAD_SECRETS_DIR}/trusted-keys.pem')
  const env = task.env[0]
  t.equal(env.NODE_ID, '${node.unique.id}', 'the node id is Nomad\'s')
  t.equal(env.NODE_NAME, '${node.unique.name}')
  t.equal(env.NOMAD_ADDR, 'unix://${NOMAD_SECRETS_DIR}/api.sock', 'Nomad API through the Task API socket')
  t.same(task.identity, [{ env: true, file: false }], 'the workload identity is NOMAD_TOKEN, nothing on disk')
  t.notMatch(JSON.stringify(task.template), 'nomad_token', 'no long-lived Nomad token is rendered')
  t.equal(task.kill_timeout, '45s', 'kill_timeout 45s > the 30 s drain')
  t.notOk('kill_signal' in task, 'raw_exec\'s default stop signal (SIGINT) is what the runner drains on')
})

t.test('democratic-csi node plugin: upstream layout plus the guard in front of mkfs', async (t) => {
  const { job } = onlyJob(await hcl(join(jobsDir, 'democratic-csi-node.nomad.hcl')))
  const task = tasks(groups(job)[0]!.group)[0]!.task
  const env = task.env[0]
  t.equal(env.FILESYSTEM_TYPE_DETECTION_STRATEGY, 'blkid')
  t.equal(task.kill_timeout, '60s')
  t.equal(task.csi_plugin[0].type, 'node')
  t.equal(task.csi_plugin[0].mount_dir, '/csi')
  const cfg = task.config[0]
  t.equal(cfg.privileged, true)
  t.equal(cfg.network_mode, 'host')
  t.equal(cfg.ipc_mode, 'host')
  const mounts = cfg.mount as Json[]
  const byTarget = (target: string): Json => mounts.find((m) => m.target === target)
  t.equal(byTarget('/host')?.source, '/', 'host root at /host (iscsiadm/multipath wrappers chroot there)')
  t.same(byTarget('/run/udev'), { type: 'bind', source: '/run/udev', target: '/run/udev', readonly: true }, '/run/udev read-only')
  for (const tool of ['mkfs.ext4', 'mkfs.xfs']) {
    t.equal(byTarget(`/usr/local/sbin/${tool}`)?.source, 'local/writ/mkfs-guard.sh', `${tool} on PATH is the guard`)
  }
  const path = String(env.PATH).split(':')
  t.ok(path.indexOf('/usr/local/sbin') >= 0 && path.indexOf('/usr/local/sbin') < path.indexOf('/usr/sbin'), 'guard dir before the real mkfs on PATH')
  t.equal(env.MKFS_GUARD_REAL_DIR, '/usr/sbin')
  const guardTpl = (task.template as Json[]).find((x) => x.destination === 'local/writ/mkfs-guard.sh')
  t.equal(guardTpl?.data, '${var.mkfs_guard_script}')
  t.equal(guardTpl?.perms, '0755')
})

t.test('multipath watchdog: system job with the documented flags and host access', async (t) => {
  const { job } = onlyJob(await hcl(join(jobsDir, 'multipath-watchdog.nomad.hcl')))
  const task = tasks(groups(job)[0]!.group)[0]!.task
  const args = (task.config[0].args as string[])
  t.same(args.slice(0, 2), ['watchdog', 'multipath'])
  for (const flag of ['--interval', '--kick-timeout', '--metrics-listen', '--textfile-dir', '--nats-url', '--nats-creds', '--nats-ca', '--nats-tls-server-name', '--node-id', '--node-name', '--device-dir']) {
    t.ok(args.includes(flag), `watchdog gets ${flag}`)
  }
  const vars = (await hcl(join(jobsDir, 'multipath-watchdog.nomad.hcl'))).variable
  t.equal(vars.interval[0].default, '30s', 'every 30 s by default')
  const targets = (task.config[0].mount as Json[]).map((m) => m.target)
  for (const tool of ['multipath', 'multipathd', 'dmsetup']) t.ok(targets.includes(`/usr/local/sbin/${tool}`), `${tool} runs the host's binary`)
  t.equal(task.config[0].network_mode, 'host', 'host network: multipathd\'s abstract socket exists only there')
  t.notMatch(JSON.stringify(task.config[0]), 'multipathd.socket', 'no bind of the socket path (the chroot reaches /host/run; a missing path would fail the task)')
})

/** Nomad's server defaults for the settings the snippet touches (nomad/config.go DefaultConfig). */
const NOMAD_SERVER_DEFAULTS: Record<string, string> = { csi_volume_claim_gc_interval: '5m', csi_volume_claim_gc_threshold: '5m' }

/** [setting, default it is said to have]: each `default "<duration>"` in a paragraph, paired with the setting named nearest to it. */
function claimedDefaults(paragraphs: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const p of paragraphs) {
    const names = Object.keys(NOMAD_SERVER_DEFAULTS).flatMap((k) => [...p.matchAll(new RegExp(k, 'g'))].map((m) => ({ k, at: m.index })))
    for (const m of p.matchAll(/default\W{0,4}"(\d+[smh])"/g)) {
      const nearest = names.sort((a, b) => Math.abs(a.at - m.index) - Math.abs(b.at - m.index))[0]
      if (nearest) out.push([nearest.k, m[1] as string])
    }
  }
  return out
}

t.test('agent settings ship as documented snippets, not jobs', async (t) => {
  const server = await hcl(join(tfDir, 'nomad-server-snippets/csi-claim-gc.hcl'))
  t.equal(server.server[0].csi_volume_claim_gc_interval, '1m')
  t.same(Object.keys(server.server[0]), ['csi_volume_claim_gc_interval'], 'the server snippet changes the claim GC interval and nothing else')
  // Comment paragraphs of the snippet, and the README's paragraphs: every default they quote is Nomad's.
  const snippetText = readFileSync(join(tfDir, 'nomad-server-snippets/csi-claim-gc.hcl'), 'utf8')
  const snippetParagraphs: string[] = ['']
  for (const line of snippetText.split('\n')) {
    const comment = /^\s*# ?(.*)$/.exec(line)?.[1]
    if (comment !== undefined && comment !== '') snippetParagraphs[snippetParagraphs.length - 1] += ` ${comment}`
    else snippetParagraphs.push(line, '')
  }
  const readmeParagraphs = readFileSync(join(tfDir, 'README.md'), 'utf8').split(/\n\s*\n|\n(?=- )/)
  const claims = claimedDefaults([...snippetParagraphs, ...readmeParagraphs])
  t.ok(claims.some(([k]) => k === 'csi_volume_claim_gc_interval'), 'the README quotes the interval\'s default')
  for (const [setting, said] of claims) t.equal(said, NOMAD_SERVER_DEFAULTS[setting], `${setting}: the default quoted ("${said}") is Nomad's`)
  const client = await hcl(join(tfDir, 'nomad-client-snippets/client.hcl'))
  t.equal(client.client[0].max_kill_timeout, '60s', 'max_kill_timeout allows the 60 s kill_timeout')
  const docker = client.plugin.docker[0].config[0]
  t.equal(docker.allow_privileged, true)
  t.equal(docker.volumes[0].enabled, true)
  t.equal(client.plugin.raw_exec[0].config[0].enabled, true, 'raw_exec enabled for the runner (confined to the writ namespace by the module)')
  const readme = readFileSync(join(tfDir, 'README.md'), 'utf8')
  for (const s of ['csi_volume_claim_gc_interval', 'max_kill_timeout', 'allow_privileged', 'raw_exec_denied_namespaces', 'nomad-server-snippets/csi-claim-gc.hcl', 'writ-node-runner-linux-x64', 'writ-linux-x64', 'writ-packs-']) {
    t.match(readme, s, `README covers ${s}`)
  }
})

