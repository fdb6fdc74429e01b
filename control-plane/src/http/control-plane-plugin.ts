/**
 * Decorates the app with the running control plane (`app.writ`) and closes it
 * (draining NATS) when the app closes.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { ControlPlane } from '../control-plane.js'

/** What the app carries; exported so importing the package brings the declaration merge along. */
export interface WritDecorations { writ: ControlPlane }

declare module 'fastify' {
  interface FastifyInstance extends WritDecorations {}
}

export default fp(async function controlPlanePlugin(app: FastifyInstance, opts: { controlPlane: ControlPlane, owned: boolean }) {
  app.decorate('writ', opts.controlPlane)
  if (opts.owned) app.addHook('onClose', async () => { await opts.controlPlane.close() })
}, { name: 'writ-control-plane' })
