/**
 * A real nats-server in operator (JWT) mode with the deployment's accounts:
 * an operator, the system account, and a WRIT account with JetStream and the
 * `node-runner` scoped signing key whose permissions are templates on the
 * user name — made from the same permission source as `writ nats
 * permissions` (packs/src/protocol/nats-permissions.ts). Users are minted
 * here with @nats-io/jwt, as nsc would.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as jwt from '@nats-io/jwt'
import { auditorPermissions, controlPlanePermissions, runnerPermissions } from '@writ/packs/protocol'
import { startNatsServer, type NatsServerHandle } from './nats-server.js'

export interface NatsWithAccounts {
  nats: NatsServerHandle
  /** A creds file for the control plane's user. */
  controlPlaneCreds: string
  /** A creds file for the read-only auditor (`writ audit`). */
  auditorCreds: string
  /** Mints a runner user named `nodeId` with the node-runner scoped key; returns its creds file. */
  runnerCreds(nodeId: string): Promise<string>
  stop(): Promise<void>
}

const UNLIMITED = { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true, disk_storage: -1, mem_storage: -1, streams: -1, consumer: -1 }

export async function startNatsWithAccounts(): Promise<NatsWithAccounts> {
  const dir = mkdtempSync(join(tmpdir(), 'writ-nats-accounts-'))
  const operator = jwt.createOperator()
  const system = jwt.createAccount()
  const account = jwt.createAccount()
  const runnerRoleKey = jwt.createAccount()
  const operatorJwt = await jwt.encodeOperator('writ', operator, { system_account: system.getPublicKey() })
  const systemJwt = await jwt.encodeAccount('SYS', system, {}, { signer: operator })
  const role = jwt.newScopedSigner(runnerRoleKey, 'node-runner', runnerPermissions('{{name()}}'))
  const accountJwt = await jwt.encodeAccount('WRIT', account, { signing_keys: [role], limits: UNLIMITED }, { signer: operator })

  const creds = async (name: string, file: string, mint: (u: jwt.KeyPair) => Promise<string>): Promise<string> => {
    const user = jwt.createUser()
    writeFileSync(join(dir, file), jwt.fmtCreds(await mint(user), user), { mode: 0o600 })
    return join(dir, file)
  }
  const controlPlaneCreds = await creds('writ-control-plane', 'control-plane.creds', (u) => jwt.encodeUser('writ-control-plane', u, account, controlPlanePermissions()))
  const auditorCreds = await creds('writ-auditor', 'auditor.creds', (u) => jwt.encodeUser('writ-auditor', u, account, auditorPermissions()))
  const nats = await startNatsServer({
    extraConfig: [
      `operator: ${operatorJwt}`,
      `system_account: ${system.getPublicKey()}`,
      'resolver: MEMORY',
      `resolver_preload: { ${system.getPublicKey()}: ${systemJwt}, ${account.getPublicKey()}: ${accountJwt} }`,
    ].join('\n'),
  })
  return {
    nats, controlPlaneCreds, auditorCreds,
    runnerCreds: (nodeId) => creds(nodeId, `${nodeId}.creds`, (u) => jwt.encodeUser(nodeId, u, account, {}, { scopedUser: true, signer: runnerRoleKey })),
    stop: async () => { await nats.stop(); rmSync(dir, { recursive: true, force: true }) },
  }
}
