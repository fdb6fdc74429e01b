/**
 * `writ audit verify` and `writ audit export`: the chain as stored (or an
 * export), checked for links, signed checkpoints, the stream's last
 * sequence, the uncovered tail and runner-journal witnesses. With
 * `--metrics-textfile` a scheduled verify also leaves its result for
 * node_exporter (verify-textfile.ts).
 */
import { existsSync, readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import { pino } from 'pino'
import { parseDuration, readJournal, type JournalWitness } from '@writ/packs'
import { natsTlsOptions } from '../nats/index.js'
import { AUDITOR_INBOX_PREFIX, loadTrustedKey, splitPemBundle, type TrustedKey } from '@writ/packs/protocol'
import { AuditChain, eventsFromJsonLines, verifyAudit, type AuditReport } from '../audit/index.js'
import { UsageError, type Io } from './cli-io.js'
import { checkTextfileName, writeVerifyTextfile } from './verify-textfile.js'

function ago(ms: number): string {
  const s = Math.round(ms / 1000)
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`
}

function report(r: AuditReport, source: string, extra: string[], io: Io, json: boolean): number {
  if (json) { io.out(`${JSON.stringify({ source, ...r }, null, 2)}\n`); return r.ok ? 0 : 1 }
  const lines = [
    `  events: ${r.events}${r.lastSeq !== null && r.firstSeq !== null ? `, sequence ${r.firstSeq}–${r.lastSeq}, head ${(r.head ?? '').slice(0, 16)}…` : ''}`,
    r.checkpoints.last
      ? `  checkpoints: ${r.checkpoints.count} signed by key(s) ${r.checkpoints.keys.join(', ')}; the last at sequence ${r.checkpoints.last.seq}, signed ${ago(r.checkpoints.last.ageMs)} ago, ${r.uncovered.count === 0 ? 'is the last event: every event is covered' : `${r.uncovered.count} event(s) after it`}`
      : `  checkpoints: ${r.checkpoints.bad > 0 ? 'none that verify' : 'none'}`,
    ...(r.checkpoints.bad > 0 ? [`  checkpoints that do not verify: ${r.checkpoints.bad}`] : []),
    ...extra,
    ...(r.witnesses.checked > 0 ? [`  witnesses: ${r.witnesses.onChain} of ${r.witnesses.checked} witnessed request hash(es) found on the chain${r.witnesses.beforeRetention ? ` (${r.witnesses.beforeRetention} predate retention)` : ''}`] : []),
    ...r.notes.map((n) => `  note: ${n}`),
  ]
  if (r.ok) { io.out(`audit chain OK (${source})\n${lines.join('\n')}\n`); return 0 }
  io.err(`audit chain BROKEN (${source})\n${r.problems.map((p) => `  - ${p}`).join('\n')}\n${lines.join('\n')}\n`)
  return 1
}

function trustedKeys(files: readonly string[]): TrustedKey[] {
  const keys: TrustedKey[] = []
  for (const f of files) {
    if (!existsSync(f)) throw new UsageError(`no such trusted key file: ${f}`)
    for (const pem of splitPemBundle(readFileSync(f, 'utf8'))) keys.push(loadTrustedKey(pem))
  }
  if (keys.length === 0) throw new UsageError(`no Ed25519 public key in ${files.join(', ')}`)
  return keys
}

/** Request hashes the runner journals witnessed; a journal that does not verify is a problem of its own. */
function witnessesFrom(files: readonly string[]): { witnesses: JournalWitness[], problems: string[], journals: number } {
  const witnesses: JournalWitness[] = []
  const problems: string[] = []
  for (const f of files) {
    if (!existsSync(f)) throw new UsageError(`no such journal: ${f}`)
    const read = readJournal(readFileSync(f, 'utf8'), f)
    if (read.ok) witnesses.push(...read.witnesses)
    else problems.push(`journal ${f} line ${read.line}: ${read.message} (it cannot serve as a witness)`)
  }
  return { witnesses, problems, journals: files.length }
}

/** Where NATS is and how to reach it: URL, credentials, and the TLS CA and server name. */
interface NatsAccess { url: string, creds: string | undefined, tls: { ca?: string | undefined, serverName?: string | undefined } }

async function withAudit<T>(nats: NatsAccess, fn: (chain: AuditChain) => Promise<T>): Promise<T> {
  const { creds, tls } = nats
  const ca = tls.ca
  if (creds !== undefined && !existsSync(creds)) throw new UsageError(`no such NATS credentials file: ${creds}`)
  if (ca !== undefined && !existsSync(ca)) throw new UsageError(`no such NATS CA file: ${ca}`)
  // The auditor's credentials (writ nats permissions) may read replies only under the auditor's inbox prefix.
  const nc = await connect({
    servers: nats.url.split(','), name: 'writ-audit', inboxPrefix: AUDITOR_INBOX_PREFIX,
    ...(creds ? { authenticator: credsAuthenticator(readFileSync(creds)) } : {}), ...natsTlsOptions(ca, tls.serverName),
  })
  try { return await fn(await AuditChain.open(nc, 'writ-cli', pino({ level: 'silent' }))) } finally { await nc.drain() }
}

export async function cmdAudit(argv: string[], io: Io): Promise<number> {
  const sub = argv[0]
  const { values } = parseArgs({ args: argv.slice(1), options: {
    file: { type: 'string' }, nats: { type: 'string' }, 'nats-creds': { type: 'string' }, 'nats-ca': { type: 'string' }, 'nats-tls-server-name': { type: 'string' },
    'trusted-keys': { type: 'string', multiple: true, default: [] },
    witness: { type: 'string', multiple: true, default: [] }, grace: { type: 'string', default: '60s' }, json: { type: 'boolean', default: false },
    'metrics-textfile': { type: 'string' },
  } })
  const nats: NatsAccess = {
    url: values.nats ?? io.env.WRIT_NATS_URL ?? 'nats://127.0.0.1:4222',
    creds: values['nats-creds'] ?? io.env.WRIT_NATS_CREDS,
    tls: { ca: values['nats-ca'] ?? io.env.WRIT_NATS_CA, serverName: values['nats-tls-server-name'] ?? io.env.WRIT_NATS_TLS_SERVER_NAME },
  }
  if (sub === 'verify') {
    const textfile = values['metrics-textfile'] === undefined ? undefined : checkTextfileName(values['metrics-textfile'])
    if (!textfile) return verify(values, nats, io)
    // A scheduled verification that cannot even start (a key file gone, NATS unreachable) is a failed one too.
    let code: number
    try { code = await verify(values, nats, io) } catch (err) {
      writeVerifyTextfile(textfile, false)
      throw err
    }
    writeVerifyTextfile(textfile, code === 0)
    return code
  }
  if (sub === 'export') {
    if (values['metrics-textfile'] !== undefined) throw new UsageError('--metrics-textfile goes with writ audit verify')
    return withAudit(nats, async (chain) => {
      for await (const e of chain.read(1)) io.out(`${e.text}\n`)
      return 0
    })
  }
  throw new UsageError('writ audit verify | export')
}

interface VerifyFlags { file?: string | undefined, 'trusted-keys'?: string[] | undefined, witness?: string[] | undefined, grace?: string | undefined, json?: boolean | undefined }

/** Verifies the chain (an export, or the stream) and prints the report; resolves with the exit code. */
async function verify(values: VerifyFlags, nats: NatsAccess, io: Io): Promise<number> {
  const keyFiles = values['trusted-keys']?.length ? values['trusted-keys'] : (io.env.WRIT_AUDIT_TRUSTED_KEYS ?? '').split(':').filter(Boolean)
  if (keyFiles.length === 0) {
    throw new UsageError('writ audit verify needs the public key(s) the control plane signs checkpoints with: --trusted-keys FILE (or WRIT_AUDIT_TRUSTED_KEYS); without them a rewritten chain would verify')
  }
  const trusted = trustedKeys(keyFiles)
  const graceMs = parseDuration(values.grace ?? '60s')
  if (graceMs === undefined) throw new UsageError(`--grace takes a duration like "60s", not "${values.grace}"`)
  const w = witnessesFrom(values.witness ?? [])
  const finish = (r: AuditReport, source: string, extra: string[]): number => {
    const merged = { ...r, ok: r.ok && w.problems.length === 0, problems: [...r.problems, ...w.problems] }
    return report(merged, source, extra, io, values.json ?? false)
  }
  if (values.file) {
    if (!existsSync(values.file)) throw new UsageError(`no such file: ${values.file}`)
    const r = await verifyAudit(eventsFromJsonLines(readFileSync(values.file, 'utf8')), { trusted, witnesses: w.witnesses, graceMs })
    return finish(r, values.file, [])
  }
  return withAudit(nats, async (chain) => {
    const stream = await chain.streamState()
    const r = await verifyAudit(chain.read(stream.firstSeq), { trusted, witnesses: w.witnesses, graceMs, stream })
    const guards = stream.denyDelete && stream.denyPurge ? 'deletes and purges refused' : 'WARNING: the stream allows message deletes or purges (a control plane of this version turns both off at start)'
    return finish(r, `stream WRIT_AUDIT at ${nats.url}`, [`  stream: sequence ${stream.firstSeq}–${stream.lastSeq}, ${r.lastSeq === null && r.events > 0 ? 'not read past the break' : stream.lastSeq === (r.lastSeq ?? 0) ? 'its last sequence read' : 'its last sequence NOT read'}; ${guards}${stream.maxAgeMs ? `; max_age ${ago(stream.maxAgeMs)}` : ''}`])
  })
}
