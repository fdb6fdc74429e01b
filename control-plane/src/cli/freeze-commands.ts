/**
 * `writ freeze --reason "…" [--scope agents|PRINCIPAL]`, `writ unfreeze
 * [--scope …]` and `writ freezes`: the operator's switch that stops every
 * agent's change-making requests at once (REST with an operator token:
 * WRIT_TOKEN or WRIT_OPERATOR_TOKEN). Every field printed is escaped for the
 * terminal: a reason is free text someone else typed.
 */
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { operatorClient } from './approval-commands.js'
import { UsageError, type Io } from './cli-io.js'
import { terminalJson, terminalLine } from './terminal-text.js'

const FreezeShape = z.object({ scope: z.string(), reason: z.string(), by: z.string(), at: z.string() }).passthrough()
type ShownFreeze = z.infer<typeof FreezeShape>

const common = { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean', default: false } } as const

function describe(f: ShownFreeze): string {
  const who = f.scope === 'agents' ? 'every agent' : `principal ${terminalLine(f.scope)}`
  return `${who}: frozen by ${terminalLine(f.by)} at ${terminalLine(f.at)}: ${terminalLine(f.reason)}`
}

export async function cmdFreeze(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...common, reason: { type: 'string' }, scope: { type: 'string' } } })
  if (!values.reason) throw new UsageError('writ freeze --reason "why" [--scope agents|PRINCIPAL]')
  const { json } = await operatorClient(io.env, values).request('POST', '/v1/freeze', { reason: values.reason, ...(values.scope ? { scope: values.scope } : {}) })
  const freeze = FreezeShape.parse((json as { freeze?: unknown }).freeze)
  if (values.json) { io.out(`${terminalJson(freeze, 2)}\n`); return 0 }
  io.out(`frozen — ${describe(freeze)}\nchange-making requests from this scope are refused and approved runs are held until \`writ unfreeze\`; reads go on\n`)
  return 0
}

export async function cmdUnfreeze(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...common, scope: { type: 'string' } } })
  const q = values.scope ? `?scope=${encodeURIComponent(values.scope)}` : ''
  const { json } = await operatorClient(io.env, values).request('DELETE', `/v1/freeze${q}`)
  const lifted = FreezeShape.parse((json as { unfrozen?: unknown }).unfrozen)
  if (values.json) { io.out(`${terminalJson(lifted, 2)}\n`); return 0 }
  io.out(`unfrozen — was ${describe(lifted)}\nheld runs are dispatched now\n`)
  return 0
}

export async function cmdFreezes(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: common })
  const { json } = await operatorClient(io.env, values).request('GET', '/v1/freeze')
  const freezes = z.array(FreezeShape).parse((json as { freezes?: unknown }).freezes)
  if (values.json) { io.out(`${terminalJson(freezes, 2)}\n`); return 0 }
  if (freezes.length === 0) { io.err('nothing is frozen\n'); return 0 }
  for (const f of freezes) io.out(`${describe(f)}\n`)
  return 0
}
