/**
 * Where the control plane's config comes from: one YAML file (relative paths
 * resolved against its folder, the policy file merged in) and then the
 * `WRIT_*` / Nomad environment variables that override it, validated by the
 * schema in config.ts.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ConfigError, loadPolicyFile } from './config-policy.js'
import { parseConfig, type Config } from './config.js'

const ENV_OVERRIDES: Array<[string, (raw: Record<string, any>, v: string) => void]> = [
  ['WRIT_NATS_URL', (r, v) => { (r.nats ??= {}).servers = v.split(',').map((s) => s.trim()).filter(Boolean) }],
  ['WRIT_NATS_CA', (r, v) => { (r.nats ??= {}).ca_file = v }],
  ['WRIT_NATS_TLS_SERVER_NAME', (r, v) => { (r.nats ??= {}).tls_server_name = v }],
  ['WRIT_LISTEN_HOST', (r, v) => { (r.listen ??= {}).host = v }],
  ['WRIT_LISTEN_PORT', (r, v) => { (r.listen ??= {}).port = Number(v) }],
  ['WRIT_PUBLIC_URL', (r, v) => { r.public_url = v }],
  ['WRIT_INSTANCE_ID', (r, v) => { r.instance_id = v }],
  ['WRIT_SIGNING_KEY_FILE', (r, v) => { (r.signing ??= {}).key_file = v }],
  ['WRIT_PACK_DIRS', (r, v) => { (r.packs ??= {}).dirs = v.split(':').filter(Boolean) }],
  ['WRIT_JS_REPLICAS', (r, v) => { (r.jetstream ??= {}).replicas = Number(v) }],
  ['WRIT_LOG_LEVEL', (r, v) => { (r.log ??= {}).level = v }],
  ['WRIT_SLACK_WEBHOOK_URL', (r, v) => { ((r.notify ??= {}).slack ??= {}).webhook_url = v }],
  ['WRIT_PORTAL_SESSION_KEY_FILE', (r, v) => { (r.portal ??= {}).session_key_file = v }],
  ['WRIT_MCP_ALLOWED_ORIGINS', (r, v) => { (r.mcp ??= {}).allowed_origins = v.split(',').map((s) => s.trim()).filter(Boolean) }],
  ['WRIT_MCP_ALLOWED_HOSTS', (r, v) => { (r.mcp ??= {}).allowed_hosts = v.split(',').map((s) => s.trim()).filter(Boolean) }],
  ['WRIT_OIDC_CLIENT_SECRET', (r, v) => { ((r.portal ??= {}).oidc ??= {}).client_secret = v }],
  ['WRIT_APPROVER_REGISTRY_FILE', (r, v) => { (r.passkeys ??= {}).registry_file = v }],
  ['NOMAD_ADDR', (r, v) => { (r.nomad ??= {}).addr = v }],
  ['NOMAD_TOKEN', (r, v) => { (r.nomad ??= {}).token = v }],
  ['NOMAD_CACERT', (r, v) => { (r.nomad ??= {}).ca_cert = v }],
  ['NOMAD_CLIENT_CERT', (r, v) => { (r.nomad ??= {}).client_cert = v }],
  ['NOMAD_CLIENT_KEY', (r, v) => { (r.nomad ??= {}).client_key = v }],
  ['NOMAD_TLS_SERVER_NAME', (r, v) => { (r.nomad ??= {}).tls_server_name = v }],
]

/** Applies `WRIT_*` overrides to a raw (unvalidated) config object. */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw) as Record<string, any>
  for (const [name, apply] of ENV_OVERRIDES) {
    const v = env[name]
    if (v !== undefined && v !== '') apply(out, v)
  }
  return out
}

/**
 * Reads the YAML file, applies env overrides, validates, and resolves relative
 * paths (pack dirs, key file, policy file) against the file's folder.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: unknown
  try { raw = parseYaml(readFileSync(file, 'utf8'), { uniqueKeys: true }) ?? {} } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`, { cause: e })
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config file ${file}: expected a YAML mapping at the top level`)
  const config = parseConfig(applyEnvOverrides(raw as Record<string, unknown>, env), `config file ${file}`)
  const base = dirname(resolve(file))
  config.packs.dirs = config.packs.dirs.map((d) => resolve(base, d))
  config.signing.key_file = resolve(base, config.signing.key_file)
  if (config.nats.ca_file) config.nats.ca_file = resolve(base, config.nats.ca_file)
  if (config.portal.session_key_file) config.portal.session_key_file = resolve(base, config.portal.session_key_file)
  if (config.notify.slack.webhook_url_file) config.notify.slack.webhook_url_file = resolve(base, config.notify.slack.webhook_url_file)
  const oidc = config.portal.oidc
  if (oidc?.client_secret_file) oidc.client_secret_file = resolve(base, oidc.client_secret_file)
  if (config.passkeys?.registry_file) config.passkeys.registry_file = resolve(base, config.passkeys.registry_file)
  if (config.passkeys?.approvers_key_file) config.passkeys.approvers_key_file = resolve(base, config.passkeys.approvers_key_file)
  if (config.audit.key_file) config.audit.key_file = resolve(base, config.audit.key_file)
  if (config.nomad.ca_cert) config.nomad.ca_cert = resolve(base, config.nomad.ca_cert)
  if (config.nomad.client_cert) config.nomad.client_cert = resolve(base, config.nomad.client_cert)
  if (config.nomad.client_key) config.nomad.client_key = resolve(base, config.nomad.client_key)
  if (config.policy.file) {
    config.policy.file = resolve(base, config.policy.file)
    config.policy.rules = [...config.policy.rules, ...loadPolicyFile(config.policy.file)]
  }
  return config
}
