/** The fleet: nodes as their heartbeats describe them, and `GET /v1/nodes`. */
export { FleetView } from './fleet-view.js'
export { NodeAttributeSource } from './node-attributes.js'
export type { NodeAttributes } from './node-attributes.js'
export { NomadNodesClient, NomadApiError } from './nomad-nodes.js'
export type { FleetNode } from './fleet-view.js'
export { NodeSchema } from './fleet-schemas.js'
export { default as nodeRoutes } from './node-routes.js'
