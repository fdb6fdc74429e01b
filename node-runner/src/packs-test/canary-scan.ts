/**
 * The canary check: every `secret_env` value of a case file, looked for in
 * everything a run left behind. A pack that prints its credential, a parser
 * that copies it, a runner that journals or logs it — each fails the case,
 * naming the variable and where it turned up (never the value).
 */
import type { RunObservation } from './runner-under-test.js'

/** Where a value can surface, named the way a failure line says it. */
export function runSurfaces(obs: RunObservation): Array<[where: string, text: string]> {
  return [
    ['stdout', obs.result?.stdout ?? ''],
    ['stderr', obs.result?.stderr ?? ''],
    ['parsed output', obs.result?.parsed === undefined ? '' : JSON.stringify(obs.result.parsed)],
    ['error', obs.result?.error ?? ''],
    ['run record', obs.record ?? ''],
    ['ack', JSON.stringify(obs.ack)],
    ['live output', obs.chunks.join('')],
    // There is no control plane in packs test, so no audit stream: every message the runner put on NATS stands in for it.
    ['NATS messages', obs.wire.map((m) => `${m.subject} ${m.data}`).join('\n')],
    ['runner journal', obs.journal],
    ['runner log', obs.log],
  ]
}

/** `REDISCLI_AUTH in stderr, runner log`, one entry per leaked variable; empty when nothing leaked. */
export function findLeaks(secrets: Readonly<Record<string, string>>, surfaces: ReadonlyArray<[string, string]>): string[] {
  const leaks: string[] = []
  for (const [name, value] of Object.entries(secrets)) {
    if (value === '') continue
    const where = surfaces.filter(([, text]) => text.includes(value)).map(([w]) => w)
    if (where.length > 0) leaks.push(`${name} in ${where.join(', ')}`)
  }
  return leaks
}
