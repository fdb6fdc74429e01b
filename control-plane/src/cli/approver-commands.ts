/**
 * `writ approvers list` and `writ approvers export`: an administrator turns
 * the passkeys operators registered into the signed approver registry that
 * runners and the control plane load. The export signs with the approvers
 * key (kept offline, never the dispatch key), under the administrator's own
 * policy file (which risk needs passkeys, which groups, what quorum), and
 * prints what changes against the registry in force — that printout is the
 * review a registration passes before it can approve anything.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { parseDuration } from '@writ/packs'
import { loadSigningKey, type SigningKey } from '@writ/packs/protocol'
import {
  ApproverRegistryError, RegistryRequirementsSchema, RelyingPartySchema, describePasskeyGate, signApproverRegistry, type ApproverEntry, type ApproverRegistryInput,
} from '@writ/packs/approvers'
import { operatorClient } from './approval-commands.js'
import { UsageError, type Io } from './cli-io.js'
import { terminalJson, terminalLine } from './terminal-text.js'

/** The administrator's policy file, kept with the approvers key. */
export const ApproverPolicyFileSchema = z.object({
  /** Defaults to what the control plane reports (its passkeys.rp_id / origins). */
  relying_party: RelyingPartySchema.optional(),
  require: RegistryRequirementsSchema,
  /** Publish only these operators' passkeys (default: every configured operator's). */
  operators: z.array(z.string().min(1)).optional(),
  /** How long the registry is accepted ("720h"): it carries expires_at, and has to be republished before then. Default: no expiry. */
  valid_for: z.string().refine((v) => (parseDuration(v) ?? 0) > 0, 'a duration such as 720h').optional(),
}).strict()

/** The serial a registry carries (0: from before serials), read leniently from what the export is about to replace. */
const Serial = z.object({ serial: z.number().int().nonnegative().optional() }).passthrough().nullable().optional()

const RegistrationsSchema = z.object({
  /** null when the control plane's public_url is no host name WebAuthn accepts. */
  relying_party: RelyingPartySchema.nullable(),
  dispatch_key_id: z.string(),
  registrations: z.array(z.object({
    credential_id: z.string(), operator: z.string(), operator_configured: z.boolean(), person: z.string(), principals: z.array(z.string()),
    groups: z.array(z.string()), public_key: z.string(), label: z.string(), registered_at: z.string(), signed_in_via: z.string(),
  }).passthrough()),
  /** The registry in force on the control plane, and the newest any instance accepted (absent from older control planes). */
  published: Serial,
  accepted: Serial,
}).passthrough()
type Registrations = z.infer<typeof RegistrationsSchema>

async function fetchRegistrations(io: Io, flags: { url?: string | undefined, token?: string | undefined, from?: string | undefined }): Promise<Registrations> {
  let raw: unknown
  if (flags.from) {
    try { raw = JSON.parse(readFileSync(flags.from, 'utf8')) } catch (err) { throw new UsageError(`--from ${flags.from}: ${(err as Error).message}`) }
  } else {
    raw = (await operatorClient(io.env, flags).request('GET', '/v1/approvers/registrations')).json
  }
  const parsed = RegistrationsSchema.safeParse(raw)
  if (!parsed.success) throw new UsageError(`${flags.from ?? 'the control plane'} did not return passkey registrations: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
  return parsed.data
}

// A passkey's label is what its owner typed on the portal: escaped for the terminal, like everything printed.
const describe = (a: { operator: string, groups: readonly string[], credential_id: string, label?: string | undefined, registered_at: string }): string => terminalLine(
  `${a.operator} [${a.groups.join(', ') || 'no groups'}] passkey ${a.credential_id.slice(0, 16)}…${a.label ? ` "${a.label}"` : ''} registered ${a.registered_at}`)

export async function cmdApprovers(argv: string[], io: Io): Promise<number> {
  const sub = argv[0]
  const common = { url: { type: 'string' }, token: { type: 'string' } } as const
  if (sub === 'list') {
    const { values } = parseArgs({ args: argv.slice(1), options: { ...common, json: { type: 'boolean', default: false } } })
    const regs = await fetchRegistrations(io, values)
    if (values.json) { io.out(`${terminalJson(regs, 2)}\n`); return 0 }
    io.out(regs.relying_party ? `relying party ${regs.relying_party.id} (${regs.relying_party.origins.join(', ')})\n` : 'relying party: not derivable from the control plane\'s public_url (name it in the approver policy file)\n')
    for (const r of regs.registrations) io.out(`${describe(r)}${r.operator_configured ? '' : '  (operator no longer configured)'}\n`)
    if (regs.registrations.length === 0) io.err('no passkey is registered yet (operators register them on the portal\'s Passkeys page)\n')
    return 0
  }
  if (sub !== 'export') throw new UsageError('writ approvers list [--json] | writ approvers export --key FILE --policy FILE --out FILE [--from FILE]')
  const { values } = parseArgs({ args: argv.slice(1), options: { ...common, key: { type: 'string' }, policy: { type: 'string' }, out: { type: 'string' }, from: { type: 'string' } } })
  if (!values.key || !values.policy || !values.out) throw new UsageError('writ approvers export needs --key (the approvers private key), --policy (your approver policy YAML) and --out (the registry file)')

  let key: SigningKey
  try { key = loadSigningKey(readFileSync(values.key, 'utf8')) } catch (err) {
    throw new UsageError(`--key ${values.key} is not an Ed25519 private key in PKCS#8 PEM (writ keys approvers makes one): ${(err as Error).message}`)
  }
  let policyRaw: unknown
  try { policyRaw = parseYaml(readFileSync(values.policy, 'utf8'), { uniqueKeys: true }) } catch (err) { throw new UsageError(`--policy ${values.policy}: ${(err as Error).message}`) }
  const policy = ApproverPolicyFileSchema.safeParse(policyRaw)
  if (!policy.success) {
    throw new UsageError(`--policy ${values.policy}: ${policy.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`).join('; ')}`)
  }
  const regs = await fetchRegistrations(io, values)
  if (key.keyId === regs.dispatch_key_id) {
    throw new UsageError(`--key ${values.key} is the control plane's dispatch key (${key.keyId}); the approver registry must be signed with a separate approvers key kept offline (writ keys approvers)`)
  }

  const wanted = policy.data.operators ? new Set(policy.data.operators) : undefined
  const approvers: ApproverEntry[] = []
  for (const r of regs.registrations) {
    if (!r.operator_configured) { io.err(`skipped: ${describe(r)} — the operator is no longer configured on the control plane\n`); continue }
    if (wanted && !wanted.has(r.operator)) { io.err(`skipped: ${describe(r)} — not in the policy's operators\n`); continue }
    approvers.push({ operator: r.operator, person: r.person, principals: r.principals, groups: r.groups, credential_id: r.credential_id, public_key: r.public_key, label: r.label.slice(0, 100), registered_at: r.registered_at })
  }
  const relyingParty = policy.data.relying_party ?? regs.relying_party
  if (!relyingParty) throw new UsageError(`the control plane's public_url is not a host name passkeys can use; name it in ${values.policy}: relying_party: { id: writ.example.com, origins: [https://writ.example.com] }`)
  if (regs.relying_party && relyingParty.id !== regs.relying_party.id) {
    io.err(`warning: the policy names relying party ${relyingParty.id}, the control plane registers passkeys for ${regs.relying_party.id}; those passkeys will not verify\n`)
  }
  // The next serial: above the control plane's registry in force, the newest it accepted, and the file this replaces.
  const replaced = previousRegistry(values.out)
  const serial = Math.max(regs.published?.serial ?? 0, regs.accepted?.serial ?? 0, replaced?.serial ?? 0) + 1
  const issuedAt = new Date()
  const validFor = policy.data.valid_for !== undefined ? parseDuration(policy.data.valid_for) : undefined
  const registry: ApproverRegistryInput = {
    v: 1, kind: 'writ.approver-registry', serial, issued_at: issuedAt.toISOString(),
    ...(validFor !== undefined ? { expires_at: new Date(issuedAt.getTime() + validFor).toISOString() } : {}),
    relying_party: relyingParty, require: policy.data.require, approvers,
  }
  let signed
  try { signed = signApproverRegistry(registry, key) } catch (err) {
    if (err instanceof ApproverRegistryError) throw new UsageError(err.message)
    throw err
  }

  // What changes against the registry in force: the administrator's review.
  const before: ApproverEntry[] = replaced?.approvers ?? []
  const ids = (list: readonly ApproverEntry[]): Set<string> => new Set(list.map((a) => a.credential_id))
  const was = ids(before)
  const now = ids(signed.registry.approvers)
  for (const a of signed.registry.approvers) if (!was.has(a.credential_id)) io.out(`+ ${describe(a)}\n`)
  for (const a of before) if (!now.has(a.credential_id)) io.out(`- ${describe(a)}\n`)

  writeFileSync(`${values.out}.tmp`, `${JSON.stringify(signed, null, 2)}\n`, { mode: 0o644 })
  renameSync(`${values.out}.tmp`, values.out)
  const req = signed.registry.require
  io.out([
    `approver registry serial ${serial} written to ${values.out}: ${approvers.length} passkey(s) of ${new Set(approvers.map((a) => a.person)).size} person(s), signed with approvers key ${key.keyId}`,
    `  ${describePasskeyGate(req)} needs ${req.default.quorum} passkey approval(s) from ${req.default.groups.join(', ')}${req.rules.length ? ` (${req.rules.length} rule(s) for named actions)` : ''}; relying party ${signed.registry.relying_party.id}`,
    `  ${signed.registry.expires_at ? `expires ${signed.registry.expires_at}: publish the next one before then` : 'no expiry (valid_for in the policy sets one)'}; daemons refuse any registry older than serial ${serial} from now on`,
    '  publish it where runners and the control plane read it (the Terraform module\'s approver_registry variable, terraform/README.md)',
    '',
  ].join('\n'))
  if (approvers.length === 0) io.err(`warning: the registry names no approver, so runners refuse ${describePasskeyGate(req)} until one is published\n`)
  return 0
}

/** The registry file the export replaces (its serial and approvers), if there is a readable one. */
function previousRegistry(file: string): { serial: number, approvers: ApproverEntry[] } | undefined {
  if (!existsSync(file)) return undefined
  try {
    const r = (JSON.parse(readFileSync(file, 'utf8')) as { registry?: { serial?: unknown, approvers?: ApproverEntry[] } }).registry
    return { serial: typeof r?.serial === 'number' && Number.isSafeInteger(r.serial) ? r.serial : 0, approvers: r?.approvers ?? [] }
  } catch { return undefined }
}
