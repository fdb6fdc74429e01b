/**
 * Control-plane configuration: the schema every setting is validated by (a
 * bad value fails at boot with the setting's path). Reading it from the YAML
 * file and the `WRIT_*` environment overrides is config-file.ts.
 */
import { z } from 'zod'
import { parseDuration } from '@writ/packs'
import { ConfigError, Duration, Name, PolicyRuleSchema, PrincipalConfigSchema } from './config-policy.js'
import { OAuthConfigSchema } from './config-oauth.js'
import { PortalConfigSchema } from './config-portal.js'

export { BudgetsSchema, ConfigError, PolicyMatchSchema, PolicyRuleSchema, PolicyFileSchema, PrincipalConfigSchema, loadPolicyFile } from './config-policy.js'
export type { Budgets, PolicyMatch, PolicyRule, PrincipalConfig } from './config-policy.js'
export type { OAuthConfig } from './config-oauth.js'

export const ConfigSchema = z.object({
  listen: z.object({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(8480) }).strict().default({ host: '127.0.0.1', port: 8480 }),
  /** The URL this control plane is reached at (links, CLI hints). */
  public_url: z.string().url().optional(),
  instance_id: Name.optional(),
  nats: z.object({
    servers: z.array(z.string().min(1)).min(1).default(['nats://127.0.0.1:4222']),
    name: z.string().default('writ-control-plane'),
    user: z.string().optional(),
    pass: z.string().optional(),
    token: z.string().optional(),
    creds_file: z.string().optional(),
    /** PEM file of the CA that signed the NATS servers' certificates; with it, TLS only, verified against it (WRIT_NATS_CA). */
    ca_file: z.string().optional(),
    /** The name the servers' certificate is verified against, when they are reached by IP (WRIT_NATS_TLS_SERVER_NAME). */
    tls_server_name: z.string().min(1).max(253).optional(),
  }).strict().default({ servers: ['nats://127.0.0.1:4222'], name: 'writ-control-plane' }),
  jetstream: z.object({
    /** Stream and bucket replicas: 1 in development, 3 on a production cluster. */
    replicas: z.number().int().min(1).max(5).default(1),
    audit_max_age: Duration.optional(),
    results_max_age: Duration.default('168h'),
    /** How long one read of the streams' and the account's usage serves /metrics scrapes. */
    usage_interval: Duration.default('15s'),
  }).strict().default({ replicas: 1, results_max_age: '168h', usage_interval: '15s' }),
  packs: z.object({ dirs: z.array(z.string().min(1)).min(1, 'at least one pack directory is needed') }).strict(),
  signing: z.object({ key_file: z.string().min(1) }).strict(),
  audit: z.object({
    /** How often a signed checkpoint is appended while events flow. */
    checkpoint_interval: Duration.default('5s'),
    /** Ed25519 key for checkpoints; the dispatch key (signing.key_file) when unset. */
    key_file: z.string().min(1).optional(),
    /** Most stored events one `GET /v1/audit` page reads; a page that stops there names the next (`Writ-Next-Seq`). */
    max_scan: z.number().int().min(10).max(100_000).default(5000),
  }).strict().default({ checkpoint_interval: '5s', max_scan: 5000 }),
  principals: z.array(PrincipalConfigSchema).default([]),
  policy: z.object({ file: z.string().optional(), rules: z.array(PolicyRuleSchema).default([]) }).strict().default({ rules: [] }),
  nomad: z.object({
    /** The Nomad API the node attributes policy matches on come from (NOMAD_ADDR); unset = every node's attributes are unknown. */
    addr: z.string().url().optional(),
    /** ACL token with node:read (NOMAD_TOKEN). */
    token: z.string().optional(),
    /** PEM file of the CA that signed Nomad's https certificate (NOMAD_CACERT). */
    ca_cert: z.string().optional(),
    /** Client certificate and key for an agent with verify_https_client (NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY). */
    client_cert: z.string().optional(),
    client_key: z.string().optional(),
    /** Name on the agent's certificate when it is not the address's host (NOMAD_TLS_SERVER_NAME), e.g. client.global.nomad. */
    tls_server_name: z.string().min(1).max(253).optional(),
    refresh_interval: Duration.default('30s'),
    /** Attributes from an older node list than this are unknown. */
    max_stale: Duration.default('5m'),
    timeout: Duration.default('5s'),
  }).strict().default({ refresh_interval: '30s', max_stale: '5m', timeout: '5s' }),
  fleet: z.object({
    /** A node is offline after this many heartbeat intervals without one. */
    offline_after_missed: z.number().int().min(1).max(100).default(3),
  }).strict().default({ offline_after_missed: 3 }),
  runs: z.object({
    writ_ttl: Duration.default('60s'),
    ack_timeout: Duration.default('5s'),
    /** Added to an action's timeout before a run without a result is `lost`. */
    lost_grace: Duration.default('30s'),
    sweep_interval: Duration.default('1s'),
    max_wait: Duration.default('60s'),
    /** An approved run still not dispatched after this long (its instance stopped) is dispatched by any instance. */
    approved_dispatch_grace: Duration.default('10s'),
    /** Runs one requester may have waiting for approval at once; more are refused (429 WRIT_ERR_TOO_MANY_PENDING). */
    max_pending_per_requester: z.number().int().min(1).max(10_000).default(20),
    /** Unfinished runs (waiting, approved, on their node) the control plane holds at most; more are refused (503 WRIT_ERR_TOO_MANY_ACTIVE_RUNS). */
    max_active_runs: z.number().int().min(10).max(100_000).default(10_000),
    /** Operator groups that may cancel any run; anyone else's run that needed approval is canceled only by its requester or its approvers. */
    cancel_any_groups: z.array(Name).default([]),
    /**
     * How long an idempotency key (`operation_id`, `Idempotency-Key`) names its run or plan: a retry within it
     * gets the same one back. Never shorter than the longest approval window in the policy (that is used instead).
     */
    operation_ttl: Duration.default('24h'),
  }).strict().default({
    writ_ttl: '60s', ack_timeout: '5s', lost_grace: '30s', sweep_interval: '1s', max_wait: '60s', approved_dispatch_grace: '10s',
    max_pending_per_requester: 20, max_active_runs: 10_000, cancel_any_groups: [], operation_ttl: '24h',
  }),
  plans: z.object({
    /** Targets one plan may have; more (named or selected) are refused with 400 WRIT_ERR_TOO_MANY_TARGETS. */
    max_targets: z.number().int().min(1).max(10_000).default(1000),
    /** How long the instance rolling a plan out holds it without renewing; another instance takes over after this. */
    lease: Duration.default('10s'),
  }).strict().default({ max_targets: 1000, lease: '10s' }),
  grants: z.object({
    /** The longest a standing grant may stand (`expires_in` above it is refused with WRIT_ERR_GRANT_LIFETIME). */
    max_lifetime: Duration.refine((s) => (parseDuration(s) ?? 0) > 0, 'max_lifetime must be positive').default('8h'),
  }).strict().default({ max_lifetime: '8h' }),
  limits: z.object({
    body_bytes: z.number().int().min(1024).max(10 * 1024 * 1024).default(64 * 1024),
    rate_per_minute: z.number().int().positive().default(600),
    /** Failed authentications (bad token, bad sign-in link, portal POST without a session) per address per minute before it gets 429s for the rest of the minute. */
    failed_auth_per_minute: z.number().int().min(1).max(100_000).default(30),
  }).strict().default({ body_bytes: 64 * 1024, rate_per_minute: 600, failed_auth_per_minute: 30 }),
  portal: PortalConfigSchema,
  /**
   * Passkey-signed approvals. Operators register passkeys in the portal; an
   * administrator publishes the signed approver registry (`writ approvers
   * export`); with `registry_file` set, approving an action at or above the
   * registry's risk needs the approver's passkey over the run's binding.
   */
  passkeys: z.object({
    /** WebAuthn relying-party id: the portal's host name (default: the host of `public_url`; an IP address is not allowed). */
    rp_id: z.string().min(1).max(253).optional(),
    rp_name: z.string().min(1).max(64).default('writ'),
    /** Origins passkeys are used from (default: the origin of `public_url`). */
    origins: z.array(z.string().url()).min(1).optional(),
    /** The published registry (the file runners load). Missing: registrations work, approvals are not passkey-gated yet. */
    registry_file: z.string().min(1).optional(),
    /** PEM of the approvers public key that signs the registry. */
    approvers_key_file: z.string().min(1).optional(),
    /** How often the registry file is checked for a new version. */
    reload_interval: Duration.default('5s'),
  }).strict().optional(),
  notify: z.object({
    slack: z.object({
      /** Incoming-webhook URL (a secret: prefer `webhook_url_file` or `WRIT_SLACK_WEBHOOK_URL`). Unset: messages are logged instead. */
      webhook_url: z.string().url().refine((u) => u.startsWith('https://') || u.startsWith('http://'), 'expected an http(s) URL').optional(),
      webhook_url_file: z.string().min(1).optional(),
      /** Deliveries per notice before it is given up (a run never waits on Slack). */
      max_attempts: z.number().int().min(1).max(50).default(8),
      timeout: Duration.default('10s'),
      /** First wait after a failed post; doubles per attempt (a 429 waits its Retry-After instead). */
      retry_base: Duration.default('1s'),
      /** More notices than this waiting from one requester are posted as one summary linking to the inbox. */
      coalesce_after: z.number().int().min(1).max(1000).default(5),
      /** How long a notice an instance holds stays its own without a sign of life: a killed instance's notices move to another after this. */
      ack_wait: Duration.default('30s'),
    }).strict().default({ max_attempts: 8, timeout: '10s', retry_base: '1s', coalesce_after: 5, ack_wait: '30s' }),
  }).strict().default({ slack: { max_attempts: 8, timeout: '10s', retry_base: '1s', coalesce_after: 5, ack_wait: '30s' } }),
  mcp: z.object({
    /**
     * Hostnames a browser's `Origin` may name on `/mcp` (DNS-rebinding guard;
     * requests without an Origin, as MCP clients send them, pass). Default: the
     * public URL's host, plus localhost, 127.0.0.1 and [::1] when that host is loopback.
     */
    allowed_origins: z.array(z.string().min(1)).min(1).optional(),
    /** Hostnames the `Host` header may name on `/mcp`; same default. */
    allowed_hosts: z.array(z.string().min(1)).min(1).optional(),
    /** Characters of run output (stdout, stderr, parsed) one MCP answer carries at most; the rest is cut, head and tail kept. */
    max_output_chars: z.number().int().min(1024).max(1_000_000).default(12_000),
    /** The SSE `retry` field on POST streams: how long a client whose stream broke waits before reconnecting with Last-Event-ID. */
    sse_retry: Duration.default('2s'),
  }).strict().default({ max_output_chars: 12_000, sse_retry: '2s' }),
  /** MCP authorization: writ as the OAuth authorization server for `/mcp` (config-oauth.ts). Unset: static bearer tokens only. */
  oauth: OAuthConfigSchema.optional(),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
}).strict()
export type Config = z.infer<typeof ConfigSchema>
export type ConfigInput = z.input<typeof ConfigSchema>

/** Validates a config object; the error names every bad setting by its dotted path. */
export function parseConfig(input: unknown, source = 'config'): Config {
  const parsed = ConfigSchema.safeParse(input)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`)
    throw new ConfigError(`invalid ${source}: ${lines.join('; ')}`)
  }
  const ids = new Set<string>()
  const ssoNames = new Set<string>()
  parsed.data.principals.forEach((p, i) => {
    if (ids.has(p.id)) throw new ConfigError(`invalid ${source}: principals.${i}.id: "${p.id}" is declared twice`)
    ids.add(p.id)
    if (p.kind === 'agent' && ((p.token_sha256 === undefined && p.oauth === undefined) || p.sso !== undefined)) {
      throw new ConfigError(`invalid ${source}: principals.${i}: an agent signs in with a token (token_sha256) or through MCP authorization (oauth), never through single sign-on (sso)`)
    }
    if (p.kind === 'operator' && p.oauth !== undefined) throw new ConfigError(`invalid ${source}: principals.${i}.oauth: only an agent is connected through OAuth (operators sign in to the portal)`)
    if (p.kind === 'operator' && p.token_sha256 === undefined && p.sso === undefined) throw new ConfigError(`invalid ${source}: principals.${i}: operator "${p.id}" needs token_sha256, sso, or both`)
    if (p.sso !== undefined) {
      if (ssoNames.has(p.sso)) throw new ConfigError(`invalid ${source}: principals.${i}.sso: "${p.sso}" is given to two operators`)
      ssoNames.add(p.sso)
    }
  })
  const oidc = parsed.data.portal.oidc
  if (oidc?.client_secret && oidc.client_secret_file) throw new ConfigError(`invalid ${source}: portal.oidc: set client_secret or client_secret_file, not both`)
  if (oidc && !oidc.scopes.includes('openid')) throw new ConfigError(`invalid ${source}: portal.oidc.scopes must include "openid"`)
  if (oidc?.groups_claim !== undefined && oidc.allowed_groups === undefined) {
    throw new ConfigError(`invalid ${source}: portal.oidc.allowed_groups: list the groups the provider may grant (portal.oidc.groups_claim is set, and any group a provider names would otherwise count)`)
  }
  const pk = parsed.data.passkeys
  if (pk && (pk.registry_file === undefined) !== (pk.approvers_key_file === undefined)) throw new ConfigError(`invalid ${source}: passkeys: set registry_file and approvers_key_file together`)
  checkNomadTls(parsed.data.nomad, source)
  const slack = parsed.data.notify.slack
  if (slack.webhook_url && slack.webhook_url_file) throw new ConfigError(`invalid ${source}: notify.slack: set webhook_url or webhook_url_file, not both`)
  return parsed.data
}

/**
 * The Nomad address and its TLS settings together: a client certificate comes
 * with its key, and TLS settings for a plain-http address (they would silently
 * not be used) stop the boot, as the runner's do.
 */
function checkNomadTls(nomad: Config['nomad'], source: string): void {
  if ((nomad.client_cert === undefined) !== (nomad.client_key === undefined)) {
    throw new ConfigError(`invalid ${source}: nomad.client_cert (NOMAD_CLIENT_CERT) and nomad.client_key (NOMAD_CLIENT_KEY) go together; only one is set`)
  }
  const tls = (['ca_cert', 'client_cert', 'client_key', 'tls_server_name'] as const).filter((k) => nomad[k] !== undefined)
  if (tls.length > 0 && nomad.addr !== undefined && !nomad.addr.startsWith('https://')) {
    throw new ConfigError(`invalid ${source}: ${tls.map((k) => `nomad.${k}`).join(', ')} set, but nomad.addr (NOMAD_ADDR) is not https://, so TLS would not be used`)
  }
}

/** The base URL links point at: `public_url`, else the listen address. */
export function publicUrl(config: Pick<Config, 'public_url' | 'listen'>): string {
  if (config.public_url) return config.public_url.replace(/\/+$/, '')
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`
}

export function durationMs(text: string): number {
  return parseDuration(text) as number
}
