/**
 * terraform/README.md's "What each job needs from the client" table is what
 * an operator prepares clients from, so it must say what the job files ask
 * for: driver, capabilities, devices, mounts, network mode and Nomad token,
 * row by row, read with the HCL parser. A job that gains a mount, a device,
 * privileges or a token without the table saying so fails here.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { allTasks, hcl, TF_DIR, withDefaults, type Json } from './helpers/hcl-jobs.js'

type Row = Record<'job' | 'driver' | 'capabilities' | 'devices' | 'mounts' | 'network mode' | 'Nomad token', string>

function readTable(): Map<string, Row> {
  const readme = readFileSync(join(TF_DIR, 'README.md'), 'utf8')
  const section = readme.split(/^## /m).find((s) => s.startsWith('What each job needs from the client'))
  if (!section) throw new Error('terraform/README.md has no "What each job needs from the client" section')
  const lines = section.split('\n').filter((l) => l.startsWith('|'))
  const cells = (l: string): string[] => l.slice(1, l.lastIndexOf('|')).split('|').map((c) => c.trim())
  const head = cells(lines[0] ?? '')
  const rows = new Map<string, Row>()
  for (const l of lines.slice(2)) {
    const c = cells(l)
    const row = Object.fromEntries(head.map((h, i) => [h, c[i] ?? ''])) as Row
    rows.set(row.job.replace(/`/g, ''), row)
  }
  return rows
}

const spans = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string)

t.test('the README table has one row per job, with every column', async (t) => {
  const table = readTable()
  const jobs = [...new Set((await allTasks()).map((x) => x.job))].sort()
  t.same([...table.keys()].sort(), jobs)
  for (const row of table.values()) {
    t.same(Object.keys(row), ['job', 'driver', 'capabilities', 'devices', 'mounts', 'network mode', 'Nomad token'], `${row.job}: all columns`)
  }
})

t.test('each row says what its job file asks of the client', async (t) => {
  const table = readTable()
  const main = await hcl(join(TF_DIR, 'main.tf'))
  const policies = main.resource.nomad_acl_policy as Record<string, Json[]>
  const tokens = main.resource.nomad_acl_token as Record<string, Json[]>
  for (const { doc, job, group, task } of await allTasks()) {
    const row = table.get(job)
    if (!row) continue
    const cfg = task.config?.[0] ?? {}
    const tt = (what: string): string => `${job}: ${what}`

    t.same(spans(row.driver), [task.driver], tt(`driver ${task.driver}`))

    if (task.driver === 'docker') {
      t.equal(spans(row.capabilities).includes('privileged'), cfg.privileged === true, tt(`privileged: ${cfg.privileged === true}`))
      for (const c of (cfg.cap_add ?? []) as string[]) t.ok(spans(row.capabilities).includes(c), tt(`cap_add ${c}`))
      if (cfg.privileged !== true && !cfg.cap_add) t.match(row.capabilities, 'Docker default', tt('Docker default capabilities'))
    } else if (task.driver === 'raw_exec') {
      t.notOk(task.user, tt('raw_exec as the client user'))
      t.match(row.capabilities, /root, no isolation/, tt('root, no isolation'))
    } else {
      const user = String(withDefaults(doc, task.user ?? 'nobody'))
      t.ok(spans(row.capabilities).includes(user), tt(`runs as ${user}`))
    }

    const devices = (cfg.devices ?? []) as Json[]
    if (cfg.privileged === true || task.driver === 'raw_exec') t.match(row.devices, /^all\b/, tt('every device'))
    else if (devices.length === 0) t.equal(row.devices, 'none', tt('no devices'))
    else for (const d of devices) t.ok(spans(row.devices).includes(d.host_path), tt(`device ${d.host_path}`))

    // Mounts: every source the job binds is named, and the row names nothing the job does not bind.
    const binds: Array<{ source: string, target: string }> = []
    for (const m of (cfg.mount ?? []) as Json[]) binds.push({ source: String(withDefaults(doc, m.source)), target: String(m.target) })
    for (const v of (cfg.volumes ?? []) as string[]) {
      const [source, target] = String(withDefaults(doc, v)).split(':')
      binds.push({ source: source as string, target: target as string })
    }
    for (const vm of (task.volume_mount ?? []) as Json[]) {
      const vol = group.volume[vm.volume][0]
      binds.push({ source: String(withDefaults(doc, vol.source)), target: String(vm.destination) })
    }
    const named = spans(row.mounts)
    if (binds.length === 0) t.match(row.mounts, /^none/, tt('no mounts'))
    for (const b of binds) t.ok(named.includes(b.source), tt(`mount source ${b.source} (→ ${b.target})`))
    const known = new Set(binds.flatMap((b) => [b.source, b.target]))
    for (const n of named) {
      const placeholder = /^(.*)<[^>]+>$/.exec(n)
      const ok = known.has(n) || (placeholder !== null && binds.some((b) => b.target.startsWith(placeholder[1] as string)))
      t.ok(ok, tt(`the table's ${n} is a mount of the job`))
    }
    const guarded = binds.filter((b) => b.source === 'local/writ/mkfs-guard.sh').length
    if (guarded > 0) t.match(row.mounts, '<each formatter and partitioner>', tt(`the guard's ${guarded} mounts are summed up`))

    const network = task.driver === 'docker' ? String(cfg.network_mode ?? 'bridge') : String(group.network?.[0]?.mode ?? 'host')
    t.equal(spans(row['network mode'])[0], network, tt(`network mode ${network}`))
    if (cfg.ipc_mode) t.ok(row['network mode'].includes(`ipc_mode = ${cfg.ipc_mode}`), tt(`ipc_mode ${cfg.ipc_mode}`))

    const identity = ((task.identity ?? []) as Json[]).some((i) => i.env === true || i.file === true)
    const tokenFromVariable = /NOMAD_TOKEN=/.test(JSON.stringify(task.template ?? []))
    if (identity) {
      const attached = Object.entries(policies).find(([, [p]]) => p.job_acl?.[0]?.job_id === job)
      t.ok(attached, tt('a policy is attached to the job'))
      t.match(row['Nomad token'], 'workload identity', tt('workload identity'))
      if (attached) t.ok(spans(row['Nomad token']).includes(attached[1][0].name), tt(`policy ${attached?.[1][0].name}`))
    } else if (tokenFromVariable) {
      // A token's policies are references (${nomad_acl_policy.x.name}); the row names the policy.
      const tokenPolicies = Object.values(tokens).flatMap(([tok]) => (tok.policies as string[]).map((p) => {
        const res = /^\$\{nomad_acl_policy\.([a-z_]+)\.name\}$/.exec(p)?.[1]
        return res ? String(policies[res]?.[0]?.name) : p
      }))
      const policy = spans(row['Nomad token']).find((s) => tokenPolicies.includes(s))
      t.match(row['Nomad token'], 'ACL token', tt('an ACL token'))
      t.ok(policy, tt('names the token\'s policy'))
    } else {
      t.equal(row['Nomad token'], 'none', tt('no Nomad token'))
    }
  }
})
