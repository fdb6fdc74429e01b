/**
 * Principals (agents and operators) and bearer-token authentication. Config
 * holds only SHA-256 hashes of tokens; a presented token is hashed and looked up.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { PrincipalConfig } from '../config.js'

export interface Principal {
  id: string
  kind: 'agent' | 'operator'
  groups: readonly string[]
  /** The person behind the principal (the id unless the config names one). */
  person: string
  ratePerMinute?: number | undefined
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/** A fresh bearer token: 32 random bytes, prefixed so it is recognisable in a leak scan. */
export function generateToken(kind: 'agent' | 'operator'): string {
  return `writ_${kind === 'agent' ? 'a' : 'o'}_${randomBytes(32).toString('base64url')}`
}

export class PrincipalRegistry {
  private readonly byHash = new Map<string, Principal>()
  private readonly byId = new Map<string, Principal>()
  private readonly bySso = new Map<string, Principal>()
  /** Agents a person may connect an MCP client as, through OAuth (`principals[].oauth`). */
  private readonly oauthRules = new Map<string, { people: readonly string[], groups: readonly string[] }>()

  constructor(configs: readonly PrincipalConfig[]) {
    for (const c of configs) {
      const p: Principal = { id: c.id, kind: c.kind, groups: c.groups, person: c.person ?? c.id, ratePerMinute: c.rate_per_minute }
      if (c.token_sha256 !== undefined) this.byHash.set(c.token_sha256, p)
      if (c.sso !== undefined && c.kind === 'operator') this.bySso.set(c.sso, p)
      this.byId.set(c.id, p)
      if (c.oauth !== undefined && c.kind === 'agent') this.oauthRules.set(c.id, c.oauth)
    }
  }

  /** The operator whose `sso` is this claim value (single sign-on), or undefined. */
  bySsoName(value: string): Principal | undefined { return this.bySso.get(value) }

  /** Every principal id held by `person` (an agent token and an operator token can be one person's). */
  idsOfPerson(person: string): string[] {
    return [...this.byId.values()].filter((p) => p.person === person).map((p) => p.id)
  }

  /** The principal holding `token`, or undefined. */
  authenticate(token: string): Principal | undefined {
    if (token.length === 0 || token.length > 512) return undefined
    return this.byHash.get(hashToken(token))
  }

  get(id: string): Principal | undefined { return this.byId.get(id) }

  /** Every principal id, in config order. */
  ids(): string[] { return [...this.byId.keys()] }
  /** The agents `operator` may connect an MCP client as: named among the agent's `oauth.people` (id or person) or in one of its `oauth.groups`. */
  oauthAgentsFor(operator: Principal): Principal[] {
    if (operator.kind !== 'operator') return []
    return [...this.oauthRules].filter(([, rule]) => rule.people.includes(operator.id) || rule.people.includes(operator.person) || rule.groups.some((g) => operator.groups.includes(g)))
      .map(([id]) => this.byId.get(id)).filter((p): p is Principal => p !== undefined)
  }

  get size(): number { return this.byId.size }
}

/** Parses `Authorization: Bearer <token>`; undefined when absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return m?.[1]
}
