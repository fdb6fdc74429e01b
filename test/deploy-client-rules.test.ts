/**
 * Rules a job must keep to start on a real Nomad client, each found missing
 * once by reading Nomad's, the Nomad provider's, democratic-csi's and
 * multipath-tools' own source, checked here on the files as HashiCorp's HCL
 * parser reads them (nomad job validate would pass every one of these):
 * secret templates readable by the task's user, no bind of a host path only
 * some clients have, no ignored or repeated settings, usage lines that
 * supply every required variable, one name for the CSI plugin, a NATS route
 * password that cannot break a URL, no hard-coded plain-http Nomad address,
 * no restart of every instance when a NATS server moves.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { REPO_ROOT } from './doubles/fixtures-dir.js'
import { allTasks, hcl, jobFiles, JOBS_DIR, onlyJob, groups, TF_DIR, withDefaults, type Json } from './helpers/hcl-jobs.js'
import { renderTemplate, type LabNomadValues } from './lab/host-agent-job.js'

const rel = (f: string): string => relative(REPO_ROOT, f)

/** Who a task runs as when it names no `user`: Nomad's exec (and java) default is nobody; raw_exec runs as the client (root); our images run as root. */
const DRIVER_DEFAULT_USER: Record<string, string> = { exec: 'nobody', raw_exec: 'root', docker: 'root' }
/** Nomad's stop signal when a task sets none: docker stop's SIGTERM, SIGINT for the fork/exec drivers. */
const DRIVER_DEFAULT_KILL_SIGNAL: Record<string, string> = { docker: 'SIGTERM', exec: 'SIGINT', raw_exec: 'SIGINT' }

function passwdEntry(user: string): { uid: number, gid: number } {
  const r = spawnSync('getent', ['passwd', user], { encoding: 'utf8' })
  const f = r.stdout.trim().split(':')
  if (r.status !== 0 || f.length < 4) throw new Error(`getent passwd ${user} failed`)
  return { uid: Number(f[2]), gid: Number(f[3]) }
}

t.test('secret templates are owned by the task\'s user, or readable by it (Nomad renders as root unless uid/gid say otherwise)', async (t) => {
  let checked = 0
  for (const { file, doc, job, name, task } of await allTasks()) {
    const user = String(withDefaults(doc, task.user ?? DRIVER_DEFAULT_USER[task.driver]))
    // The uid/gid the defaults name must be that user's on a Debian client (base-passwd: nobody 65534, nogroup 65534).
    const who = user === 'root' ? { uid: 0, gid: 0 } : passwdEntry(user)
    for (const tpl of (task.template ?? []) as Json[]) {
      const perms = parseInt(String(tpl.perms ?? '644'), 8)
      const uid = Number(withDefaults(doc, tpl.uid ?? 0))
      const gid = Number(withDefaults(doc, tpl.gid ?? 0))
      const readable = (perms & 0o004) !== 0 || ((perms & 0o040) !== 0 && gid === who.gid) || ((perms & 0o400) !== 0 && uid === who.uid)
      t.ok(readable, `${rel(file)} ${job}/${name}: ${tpl.destination} (${tpl.perms ?? '644'}, owner ${uid}:${gid}) is readable by ${user} (${who.uid}:${who.gid})`)
      if (String(tpl.destination).startsWith('secrets/') && (perms & 0o004) === 0) {
        t.equal(uid, who.uid, `${job}/${name}: ${tpl.destination} is owned by the task user`)
        checked++
      }
    }
  }
  t.ok(checked >= 4, `${checked} private secret templates checked`)
  // The one that was broken: writ serve as nobody reading 0400 root files.
  const cp = await hcl(join(JOBS_DIR, 'writ-control-plane.nomad.hcl'))
  t.equal(cp.variable.task_user[0].default, 'nobody')
  t.same(passwdEntry('nobody'), { uid: cp.variable.task_uid[0].default, gid: cp.variable.task_gid[0].default }, 'task_uid/task_gid defaults are nobody\'s')
})

/**
 * Host paths a bind may use: ones every Linux client has, and the ones the
 * README lists as each host's prerequisites (variables described "ON EACH
 * HOST"). A missing source fails the task (docker refuses the bind); a path
 * only some clients have (multipathd's socket, an optional daemon's) must not
 * be bound at all.
 */
const EVERY_CLIENT_HAS = new Set(['/', '/run/udev'])
t.test('no bind mount of a host path that only some clients have', async (t) => {
  const readme = readFileSync(join(TF_DIR, 'README.md'), 'utf8')
  for (const { file, doc, job, task } of await allTasks()) {
    for (const m of (task.config?.[0]?.mount ?? []) as Json[]) {
      if (m.type !== 'bind') continue
      const source = String(m.source)
      const v = /^\$\{var\.([a-z_]+)\}$/.exec(source)?.[1]
      if (!source.startsWith('/') && !v) { t.pass(`${job}: ${source} is in the task directory`); continue }
      if (v) {
        const decl = doc.variable[v][0]
        t.match(decl.description, /ON EACH HOST/, `${rel(file)}: var.${v} (${source} → ${m.target}) is a host prerequisite`)
        t.match(readme, decl.default, `terraform/README.md lists ${decl.default} among each host's prerequisites`)
        continue
      }
      t.ok(EVERY_CLIENT_HAS.has(source), `${rel(file)}: ${source} → ${m.target} exists on every client`)
    }
  }
  for (const f of jobFiles()) {
    const { job } = onlyJob(await hcl(f))
    t.notMatch(JSON.stringify(job), /"(?:source|host_path)":"[^"]*multipathd/, `${rel(f)}: multipathd's socket is never bound (it may be abstract, or absent)`)
  }
})

t.test('no ignored or repeated settings: stagger only where Nomad reads it, no kill_signal that names the driver default', async (t) => {
  for (const f of jobFiles()) {
    const { name, job } = onlyJob(await hcl(f))
    for (const { name: g, group } of groups(job)) {
      for (const u of (group.update ?? []) as Json[]) {
        if (job.type !== 'system') t.notOk('stagger' in u, `${name}/${g}: update.stagger applies to system jobs only; a ${job.type} job ignores it`)
      }
    }
  }
  for (const { job, name, task } of await allTasks()) {
    if (task.kill_signal !== undefined) t.not(task.kill_signal, DRIVER_DEFAULT_KILL_SIGNAL[task.driver], `${job}/${name}: kill_signal ${task.kill_signal} is already the ${task.driver} default`)
    else t.pass(`${job}/${name}: stops with the ${task.driver} default, ${DRIVER_DEFAULT_KILL_SIGNAL[task.driver]}`)
  }
})

t.test('each job\'s usage line supplies every variable that has no default', async (t) => {
  for (const f of jobFiles()) {
    const text = readFileSync(f, 'utf8')
    const doc = await hcl(f)
    // The header's `nomad job run …` command, continuation lines joined.
    const header = text.slice(0, text.search(/^variable "/m)).split('\n').map((l) => l.replace(/^#\s?/, '')).join('\n')
    const usage = /nomad job run(?:[^\n]*\\\n)*[^\n]*/.exec(header)?.[0]
    t.ok(usage, `${rel(f)} shows how to run it`)
    if (!usage) continue
    t.match(usage, rel(f), `${rel(f)}: the usage line names the file`)
    const required = Object.entries(doc.variable ?? {}).filter(([, v]) => !('default' in (v as Json[])[0])).map(([k]) => k)
    const viaFile = /-var-file[= ]/.test(usage)
    for (const v of required) {
      t.ok(viaFile || new RegExp(`-var\\s+['"]?${v}=`).test(usage), `${rel(f)}: required variable ${v} is in the usage line${viaFile ? ' (via -var-file)' : ''}`)
    }
  }
})

t.test('the CSI plugin has one name: --csi-name is the plugin id, from the module\'s csi_plugin_id', async (t) => {
  const doc = await hcl(join(JOBS_DIR, 'democratic-csi-node.nomad.hcl'))
  const task = (await allTasks()).find((x) => x.job === 'democratic-csi-node')!.task
  t.ok((task.config[0].args as string[]).includes('--csi-name=${var.plugin_id}'), '--csi-name=${var.plugin_id}')
  t.equal(task.csi_plugin[0].id, '${var.plugin_id}', 'csi_plugin.id is the same variable')
  t.notOk('csi_name' in doc.variable, 'no second variable that could differ')
  const main = await hcl(join(TF_DIR, 'main.tf'))
  t.equal(main.resource.nomad_job.democratic_csi_node[0].hcl2[0].vars.plugin_id, '${var.csi_plugin_id}', 'terraform passes csi_plugin_id')
})

t.test('the NATS route password cannot break the route URL or the config string', async (t) => {
  const vars = (await hcl(join(TF_DIR, 'variables.tf'))).variable
  const condition = String(vars.nats_route_password[0].validation[0].condition)
  const hclRegex = /regex\("(.*)", var\.nats_route_password\)/.exec(condition)?.[1]
  t.ok(hclRegex, `validated with a regex (${condition})`)
  const re = new RegExp(JSON.parse(`"${hclRegex}"`) as string)
  t.ok(re.test('3f9c2a7be1d04c8a9f6e5d4c3b2a1908'), 'openssl rand -hex output is accepted')
  t.ok(re.test('Abc-def_ghi.jkl~mno-pqrstu'), 'URL-unreserved characters are accepted')
  for (const bad of ['short-password', 'p@ssw0rd-p@ssw0rd-p@ssw0rd', 'pass:word-pass:word-pass:word', 'pass/word/pass/word/pass/word', 'pass%20word-pass%20word-pass', 'pass"word"pass"word"pass"word', 'pass word pass word pass word', 'pass#word#pass#word#pass#word', 'pass\\word\\pass\\word\\passwor']) {
    t.notOk(re.test(bad), `refused: ${bad}`)
  }
  const nats = readFileSync(join(JOBS_DIR, 'nats.nomad.hcl'), 'utf8')
  t.match(nats, 'nats-route://route:{{ $pw }}@', 'the route URL embeds the password as is, which the validation makes safe')
})

t.test('no job hard-codes a plain-http Nomad address; the control plane passes NOMAD_ADDR and NOMAD_CACERT through', async (t) => {
  for (const f of jobFiles()) t.notMatch(readFileSync(f, 'utf8'), /http:\/\/[^\s"]*4646|"http:\/\/\$\{attr/, `${rel(f)}: no http://…:4646`)
  const doc = await hcl(join(JOBS_DIR, 'writ-control-plane.nomad.hcl'))
  const task = (await allTasks()).find((x) => x.job === 'writ-control-plane')!.task
  t.equal(task.env[0].NOMAD_ADDR, '${var.nomad_addr}', 'NOMAD_ADDR comes from a variable')
  t.match(String(doc.variable.nomad_addr[0].default), /^https:\/\//, 'and defaults to https')
  t.equal(task.env[0].NOMAD_TLS_SERVER_NAME, '${var.nomad_tls_server_name}')
  const envTpl = (task.template as Json[]).find((x) => x.destination === 'secrets/env')
  t.match(envTpl.data, /\{\{- if \.nomad_ca_pem\.Value \}\}\s*NOMAD_CACERT=\{\{ env "NOMAD_SECRETS_DIR" \}\}\/nomad-ca\.pem/, 'NOMAD_CACERT points at the CA when the variable holds one')
  const caTpl = (task.template as Json[]).find((x) => x.destination === 'secrets/nomad-ca.pem')
  t.match(caTpl.data, '.nomad_ca_pem.Value', 'the CA is rendered from the variable')
  const main = await hcl(join(TF_DIR, 'main.tf'))
  const cpVars = main.resource.nomad_job.control_plane[0].hcl2[0].vars as string
  t.match(cpVars, 'nomad_addr') && t.match(cpVars, 'nomad_tls_server_name')
  t.match(JSON.stringify(main.resource.nomad_variable.control_plane[0].items), 'nomad_ca_pem = var.nomad_ca_cert_pem', 'terraform stores the CA for the job')
})

t.test('verify_https_client: the control plane presents a client certificate from its Nomad Variable, the key readable by its user only', async (t) => {
  const task = (await allTasks()).find((x) => x.job === 'writ-control-plane')!.task
  const doc = await hcl(join(JOBS_DIR, 'writ-control-plane.nomad.hcl'))
  const tpl = (dest: string): Json => (task.template as Json[]).find((x) => x.destination === dest)
  t.match(tpl('secrets/env').data, /\{\{- if \.nomad_client_cert_pem\.Value \}\}\s*NOMAD_CLIENT_CERT=\{\{ env "NOMAD_SECRETS_DIR" \}\}\/nomad-client\.pem\s*NOMAD_CLIENT_KEY=\{\{ env "NOMAD_SECRETS_DIR" \}\}\/nomad-client-key\.pem/, 'NOMAD_CLIENT_CERT/KEY point at the files when the variable holds a certificate')
  t.match(tpl('secrets/nomad-client.pem')?.data, '.nomad_client_cert_pem.Value')
  const key = tpl('secrets/nomad-client-key.pem')
  t.match(key?.data, '.nomad_client_key_pem.Value')
  t.equal(key?.perms, '0400')
  t.equal(withDefaults(doc, key?.uid), doc.variable.task_uid[0].default, 'owned by the task user')
  t.same([task.env[0].NOMAD_CLIENT_CERT, task.env[0].NOMAD_CLIENT_KEY], ['', ''], 'unset (not the agent\'s) when the variable holds none')

  const main = await hcl(join(TF_DIR, 'main.tf'))
  const items = JSON.stringify(main.resource.nomad_variable.control_plane[0].items)
  t.match(items, 'nomad_client_cert_pem = var.nomad_client_cert_pem')
  t.match(items, 'nomad_client_key_pem  = var.nomad_client_key_pem')
  const conditions = JSON.stringify(main.resource.nomad_variable.control_plane[0].lifecycle[0].precondition)
  t.match(conditions, '(var.nomad_client_cert_pem == \\"\\") == (var.nomad_client_key_pem == \\"\\")', 'the plan fails on half a client certificate')
  t.match(conditions, 'startswith(var.nomad_addr, \\"https://\\")', 'and on TLS settings for a plain-http address')
  const vars = (await hcl(join(TF_DIR, 'variables.tf'))).variable
  t.equal(vars.nomad_client_key_pem[0].sensitive, true, 'the key is sensitive')
  t.ok(vars.nomad_client_cert_pem[0].validation, 'the certificate is validated (never a key)')
})

t.test('a NATS server that moves restarts no writ daemon: server lists are noop, and a restarting template reads no address', async (t) => {
  // consul-template re-renders on every change of the service list; Nomad then applies change_mode to
  // every allocation at once (within the splay), whatever the update block says. Clients learn the
  // cluster from the servers' INFO (connect_urls), so only "no server at all" is worth a restart.
  const withNats = (services: LabNomadValues['services']): LabNomadValues => ({
    nodeId: 'n', nodeName: 'n', nodeIp: '10.0.0.9', datacenter: 'dc1', vars: {}, services, variables: {}, workloadIdentityToken: 'wi',
  })
  let lists = 0
  let restarts = 0
  for (const { job, name, task } of await allTasks()) {
    for (const tpl of (task.template ?? []) as Json[]) {
      const data = String(tpl.data ?? '')
      if (!data.includes('nomadService "writ-nats"')) continue
      const mode = tpl.change_mode ?? 'restart'
      const where = `${job}/${name} ${tpl.destination}`
      if (/\.Address|\.Port/.test(data)) {
        t.equal(mode, 'noop', `${where} renders the server list: change_mode noop`)
        lists++
        continue
      }
      const render = (services: LabNomadValues['services']): string => renderTemplate(data, withNats(services), where)
      const here = render({ 'writ-nats': { address: '10.0.0.1', port: 4222 } })
      t.equal(render({ 'writ-nats': { address: '10.0.0.2', port: 4222 } }), here, `${where} (${mode}): the same text wherever the server runs`)
      if (mode === 'restart') {
        t.not(render({}), here, `${where}: it changes (and restarts) only between no server and some`)
        restarts++
      }
    }
  }
  t.equal(lists, 3, 'the runner, the watchdog and the control plane take the list from one noop template each')
  t.equal(restarts, 3, 'and each restarts only when the first server appears')
})
