/**
 * What the control plane needs before its parts are wired: the NATS
 * connection with the configured credentials and CA, the streams, the
 * signing keys, and passkeys (the approver registry and the record of the
 * newest one accepted). Every failure is a ControlPlaneStartError that names
 * the setting.
 */
import { readFileSync } from 'node:fs'
import { createPublicKey } from 'node:crypto'
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import type { PackCatalog, SideEffect } from '@writ/packs'
import { CONTROL_PLANE_INBOX_PREFIX, keyIdOf, loadSigningKey, loadTrustedKey, splitPemBundle, type SigningKey, type TrustedKey } from '@writ/packs/protocol'
import { ApproverRegistryError, ApproverRegistryFile } from '@writ/packs/approvers'
import type { Logger } from 'pino'
import { durationMs, type Config } from './config.js'
import { ensureStreams, natsTlsOptions } from './nats/index.js'
import { PasskeyConfigError, Passkeys, PasskeyStore, RegistryRecord, relyingParty, type RelyingParty } from './passkeys/index.js'

export class ControlPlaneStartError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'ControlPlaneStartError' }
}

/** Connects to NATS with the configured credentials. */
export async function connectNats(config: Config): Promise<NatsConnection> {
  const n = config.nats
  if (n.ca_file !== undefined) {
    let pem: string
    try { pem = readFileSync(n.ca_file, 'utf8') } catch (err) {
      throw new ControlPlaneStartError(`cannot read nats.ca_file (WRIT_NATS_CA) ${n.ca_file}: ${(err as Error).message}`, { cause: err })
    }
    if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw new ControlPlaneStartError(`nats.ca_file (WRIT_NATS_CA) ${n.ca_file} does not hold a PEM certificate`)
  }
  try {
    return await connect({
      servers: n.servers, name: n.name, maxReconnectAttempts: -1, reconnectTimeWait: 250,
      // Replies and KV watch deliveries (run records) arrive under a prefix only the control plane may read.
      inboxPrefix: CONTROL_PLANE_INBOX_PREFIX,
      // Async stack traces cost an Error per request; at hundreds of requests a second that shows.
      noAsyncTraces: true,
      ...(n.user !== undefined ? { user: n.user, pass: n.pass } : {}),
      ...(n.token !== undefined ? { token: n.token } : {}),
      ...(n.creds_file !== undefined ? { authenticator: credsAuthenticator(readFileSync(n.creds_file)) } : {}),
      ...natsTlsOptions(n.ca_file, n.tls_server_name),
    })
  } catch (err) {
    throw new ControlPlaneStartError(`cannot connect to NATS at ${n.servers.join(', ')} (setting nats.servers / WRIT_NATS_URL)`, { cause: err })
  }
}

/**
 * Creates the streams and the runs bucket if missing (idempotent). The seam a
 * dev stack calls before it starts runners, since runners never create streams.
 */
export async function ensureJetStream(nc: NatsConnection, config: Config): Promise<void> {
  await ensureStreams(nc, { replicas: config.jetstream.replicas, auditMaxAge: config.jetstream.audit_max_age, resultsMaxAge: config.jetstream.results_max_age })
}

/** The Ed25519 private key in `file` (setting `setting`). */
export function loadKey(file: string, setting = 'signing.key_file'): SigningKey {
  let pem: string
  try { pem = readFileSync(file, 'utf8') } catch (err) {
    throw new ControlPlaneStartError(`cannot read signing key (setting ${setting}): ${file}`, { cause: err })
  }
  try { return loadSigningKey(pem) } catch (err) {
    throw new ControlPlaneStartError(`${setting} ${file} is not an Ed25519 private key in PKCS#8 PEM`, { cause: err })
  }
}

function loadApproversKeys(file: string): TrustedKey[] {
  let pems: string[]
  try { pems = splitPemBundle(readFileSync(file, 'utf8')) } catch (err) {
    throw new ControlPlaneStartError(`cannot read the approvers public key (setting passkeys.approvers_key_file): ${file}`, { cause: err })
  }
  if (pems.length === 0) throw new ControlPlaneStartError(`passkeys.approvers_key_file ${file} holds no PEM public key (writ keys approvers writes one)`)
  try { return pems.map((p) => loadTrustedKey(p)) } catch (err) {
    throw new ControlPlaneStartError(`passkeys.approvers_key_file ${file} is not an Ed25519 public key in SPKI PEM`, { cause: err })
  }
}

/**
 * Passkeys when configured: a bad relying party stops the boot before
 * anything connects. Once NATS is up the registrations bucket and the record
 * of the newest registry accepted are opened, then the registry file: one
 * that does not verify, has expired, or is older than the record stops the
 * boot with the reason — unless the recorded registry itself still verifies,
 * which then stays in force.
 */
export function preparePasskeys(config: Config, dispatchKey: SigningKey, catalog: PackCatalog, log: Logger): ((nc: NatsConnection) => Promise<Passkeys>) | undefined {
  const pk = config.passkeys
  if (!pk) return undefined
  let rp: RelyingParty
  let approversKeys: TrustedKey[] | undefined
  try {
    rp = relyingParty(config)
    if (pk.registry_file && pk.approvers_key_file) approversKeys = loadApproversKeys(pk.approvers_key_file)
  } catch (err) {
    if (err instanceof PasskeyConfigError) throw new ControlPlaneStartError(err.message, { cause: err })
    throw err
  }
  const sideEffectsOf = (action: string): readonly SideEffect[] | undefined => {
    const hit = catalog.lookup(action)
    return hit.ok ? hit.action.spec.side_effects : undefined
  }
  return async (nc) => {
    const store = await PasskeyStore.open(nc, config.jetstream.replicas)
    if (!pk.registry_file || !approversKeys) return new Passkeys(rp, store, undefined, log, sideEffectsOf)
    const record = await RegistryRecord.open(nc, config.jetstream.replicas)
    const publicKey = createPublicKey(dispatchKey.privateKey)
    let published: ApproverRegistryFile
    try {
      published = ApproverRegistryFile.open(pk.registry_file, { approvers: approversKeys, dispatch: [{ keyId: keyIdOf(publicKey), publicKey }] }, log, {
        reloadMs: durationMs(pk.reload_interval), mustExist: false, accepted: await record.get(), onAccepted: (a) => record.raise(a),
      })
    } catch (err) {
      if (err instanceof ApproverRegistryError) throw new ControlPlaneStartError(err.message, { cause: err })
      throw err
    }
    await published.recorded()
    return new Passkeys(rp, store, published, log, sideEffectsOf, record)
  }
}
