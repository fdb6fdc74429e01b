/**
 * A control plane that follows a published approver registry, on its own
 * nats-server: ops-1 and ops-2 (oncall) with software passkeys, the registry
 * signed with an approvers key (not the dispatch key) and written where a
 * runner can follow it too (`registryFile`, `approversPub`).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, parseConfig, type ConfigInput } from '@writ/control-plane'
import { generateSigningKeyPair, loadSigningKey } from '@writ/packs/protocol'
import type { ApproverRegistryInput } from '@writ/packs/approvers'
import { startNatsServer, type NatsServerHandle } from './nats-server.js'
import { makeCpFixture, type CpFixture } from './cp-fixtures.js'
import { TEST_RP, publishRegistry, registryOf, testApprover, type TestApprover } from './approver-registry.js'

export interface PasskeySuite {
  nats: NatsServerHandle
  fx: CpFixture
  app: Awaited<ReturnType<typeof buildApp>>
  ops1: TestApprover
  ops2: TestApprover
  registryFile: string
  approversPub: string
  /** Publishes a new registry (signed with the same approvers key) naming `approvers` under `require`. */
  republish(approvers: TestApprover[], require: ApproverRegistryInput['require']): void
}

export async function startPasskeySuite(
  t: { teardown(fn: () => unknown): void }, require: ApproverRegistryInput['require'], config: Partial<ConfigInput> = {},
): Promise<PasskeySuite> {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const approvers = generateSigningKeyPair()
  const approversPub = join(fx.dir, 'approvers.pub.pem')
  writeFileSync(approversPub, approvers.publicPem)
  const registryFile = join(fx.dir, 'approvers.json')
  const ops1 = testApprover('ops-1', ['oncall'])
  const ops2 = testApprover('ops-2', ['oncall'])
  const republish = (people: TestApprover[], req: ApproverRegistryInput['require'], at = new Date()): void =>
    publishRegistry(registryFile, registryOf(people, req, at), loadSigningKey(approvers.privatePem))
  republish([ops1, ops2], require, new Date(Date.now() - 60_000))
  const app = await buildApp(parseConfig({
    ...fx.config, public_url: TEST_RP.origins[0],
    passkeys: { registry_file: registryFile, approvers_key_file: approversPub, reload_interval: '200ms' }, ...config,
  }))
  t.teardown(() => app.close())
  return { nats, fx, app, ops1, ops2, registryFile, approversPub, republish: (people, req) => republish(people, req) }
}
