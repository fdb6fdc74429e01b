/**
 * `writ grant …`, `writ grants`, `writ revoke <grant>`: standing grants from a
 * terminal, through the same REST routes as the portal (an operator token:
 * WRIT_TOKEN or WRIT_OPERATOR_TOKEN). `grant` prints what it grants before it
 * sends it; every field from the server is escaped for the terminal.
 */
import { parseArgs } from 'node:util'
import { operatorClient } from './approval-commands.js'
import { EXIT, UsageError, type Io } from './cli-io.js'
import { pairs } from './show-command.js'
import { terminalJson, terminalLine } from './terminal-text.js'
import { typedArgs } from './typed-args.js'

/** A grant as the API shows it. */
interface ShownGrant {
  id: string, status: string, principal: string, action: string, node: string, args: 'any' | Record<string, unknown>,
  uses: number | null, uses_left: number | null, expires_at: string, reason: string, digest: string,
  quorum: number, approvals: Array<{ by: string, passkey?: string }>, revoked_by?: string, passkey_required?: true, sign_url?: string, covers_nothing?: string
}

const common = { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean', default: false } } as const

function grantLine(g: ShownGrant): string {
  const uses = g.uses === null ? 'unlimited uses' : `${g.uses_left}/${g.uses} uses left`
  const args = g.args === 'any' ? 'any args' : pairs(g.args)
  const who = `${terminalLine(g.action)} for ${terminalLine(g.principal)} on ${terminalLine(g.node)} (${args})`
  const approvals = `${g.approvals.length}/${g.quorum} ${g.passkey_required ? 'passkey-signed ' : ''}approvals${g.approvals.length > 0 ? ` (${g.approvals.map((a) => `${terminalLine(a.by)}${a.passkey ? ' (passkey)' : ''}`).join(', ')})` : ''}`
  return `${terminalLine(g.id)}  ${terminalLine(g.status)}  ${who}, ${uses}, until ${terminalLine(g.expires_at)}, ${approvals}\n    reason: ${terminalLine(g.reason)}\n${g.covers_nothing ? `    covers nothing: ${terminalLine(g.covers_nothing)}\n` : ''}`
}

export async function cmdGrant(argv: string[], io: Io): Promise<number> {
  if (argv[0] === 'approve') return cmdGrantApprove(argv.slice(1), io)
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: {
      ...common, to: { type: 'string' }, node: { type: 'string' }, arg: { type: 'string', multiple: true, default: [] }, 'any-args': { type: 'boolean', default: false },
      for: { type: 'string' }, uses: { type: 'string' }, reason: { type: 'string' },
    },
  })
  const action = positionals[0]
  if (!action || !values.to || !values.node || !values.for || !values.reason) {
    throw new UsageError('writ grant <action> --to PRINCIPAL --node NODE|\'*\' (--arg k=v... | --any-args) --for 1h [--uses N] --reason "why"')
  }
  const exact = (values.arg ?? []).length > 0
  if (exact === values['any-args']) throw new UsageError('writ grant takes the exact arguments (--arg k=v, one or more) or --any-args, one of them')
  if (values.uses !== undefined && !/^-?\d{1,6}$/.test(values.uses)) throw new UsageError('--uses takes a whole number')
  const client = operatorClient(io.env, values)
  const contract = (await client.request('GET', `/v1/actions/${encodeURIComponent(action)}`)).json as { args: Array<{ name: string, type: string }> }
  const body = {
    principal: values.to, action, node: values.node, args: exact ? typedArgs(values.arg ?? [], contract.args) : 'any',
    expires_in: values.for, reason: values.reason, ...(values.uses !== undefined ? { uses: Number(values.uses) } : {}),
  }
  const g = (await client.request('POST', '/v1/grants', body)).json as ShownGrant
  if (values.json) io.out(`${terminalJson(g)}\n`)
  else io.out(grantLine(g))
  if (g.status === 'pending') io.err(pendingNote(g))
  return EXIT.ok
}

/** What a pending grant still needs, and where to give it: a passkey signs in a browser, so those are signed on the Grants page. */
function pendingNote(g: ShownGrant): string {
  const more = g.quorum - g.approvals.length
  if (g.passkey_required) {
    return `grant ${terminalLine(g.id)} needs ${more} passkey signature(s) over its digest ${terminalLine(g.digest.slice(0, 12))}… (the approver registry asks for them), yours included: sign it on the Grants page: ${terminalLine(g.sign_url ?? '/ui/grants')}\n`
  }
  return `grant ${terminalLine(g.id)} needs ${more} more approval(s): writ grant approve ${terminalLine(g.id)} --digest ${terminalLine(g.digest)}\n`
}

async function cmdGrantApprove(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...common, digest: { type: 'string' } } })
  const id = positionals[0]
  if (!id) throw new UsageError('writ grant approve <grant-id> [--digest HEX]')
  const client = operatorClient(io.env, values)
  // The grant is printed before it is approved, and the digest printed is the one sent.
  const shown = (await client.request('GET', `/v1/grants/${encodeURIComponent(id)}`)).json as ShownGrant
  io.err(`approving grant: ${grantLine(shown)}`)
  const g = (await client.request('POST', `/v1/grants/${encodeURIComponent(id)}/approve`, { digest: values.digest ?? shown.digest })).json as ShownGrant
  if (values.json) io.out(`${terminalJson(g)}\n`)
  else io.out(grantLine(g))
  return EXIT.ok
}

export async function cmdGrants(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...common, status: { type: 'string' }, to: { type: 'string' } } })
  const q = new URLSearchParams()
  if (values.status) q.set('status', values.status)
  if (values.to) q.set('principal', values.to)
  const { json } = await operatorClient(io.env, values).request('GET', `/v1/grants${q.size > 0 ? `?${q}` : ''}`)
  const grants = (json as { grants: ShownGrant[] }).grants
  if (values.json) { io.out(`${terminalJson(grants, 2)}\n`); return EXIT.ok }
  if (grants.length === 0) { io.err('no grant\n'); return EXIT.ok }
  for (const g of grants) io.out(grantLine(g))
  return EXIT.ok
}

export async function cmdRevoke(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...common, reason: { type: 'string' } } })
  const id = positionals[0]
  if (!id) throw new UsageError('writ revoke <grant-id> [--reason "why"]')
  const { json } = await operatorClient(io.env, values).request('DELETE', `/v1/grants/${encodeURIComponent(id)}`, values.reason ? { reason: values.reason } : {})
  const g = json as ShownGrant
  if (values.json) io.out(`${terminalJson(g)}\n`)
  else io.out(`grant ${terminalLine(g.id)}: ${terminalLine(g.status)} by ${terminalLine(g.revoked_by ?? '?')}; it covers nothing from the next request on\n`)
  return EXIT.ok
}
