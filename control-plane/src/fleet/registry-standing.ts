/**
 * How the approver registry a runner reports compares with the control
 * plane's: a runner behind (a lower serial) still accepts passkeys the newer
 * registry revoked, so `GET /v1/nodes` and the Nodes page flag it.
 */
import type { Heartbeat } from '@writ/packs/protocol'

type Mark = NonNullable<Heartbeat['approver_registry']>

/**
 * `current`: the same registry; `behind`: a lower serial than the control
 * plane's; `ahead`: a higher one (the control plane has not loaded it yet);
 * `differs`: the same serial, another digest; `missing`: the runner holds no
 * registry while the control plane has one (it checks no passkey at all);
 * `unknown`: the control plane has none to compare with.
 */
export type RegistryStanding = 'current' | 'behind' | 'ahead' | 'differs' | 'missing' | 'unknown'

export function registryStanding(runner: Mark | undefined, controlPlane: Pick<Mark, 'serial' | 'digest'> | undefined): RegistryStanding {
  if (!controlPlane) return 'unknown'
  if (!runner) return 'missing'
  if (runner.serial < controlPlane.serial) return 'behind'
  if (runner.serial > controlPlane.serial) return 'ahead'
  return runner.digest === controlPlane.digest ? 'current' : 'differs'
}
