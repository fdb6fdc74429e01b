/**
 * The runner's NATS connection: its own inbox prefix (the only one its
 * credentials may read), reconnecting for ever with jitter, and the
 * credentials, user or TLS settings the config names.
 */
import { readFileSync } from 'node:fs'
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { runnerInboxPrefix } from '@writ/packs/protocol'
import { natsTlsOptions } from './nats-tls.js'
import type { RunnerConfig } from './runner-config.js'

export function connectRunner(config: RunnerConfig): Promise<NatsConnection> {
  return connect({
    servers: config.natsUrl.split(','),
    name: `writ-node-runner:${config.nodeId}`,
    // Replies come back on this node's own inbox, the only one its credentials may read.
    inboxPrefix: runnerInboxPrefix(config.nodeId),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 500,
    waitOnFirstConnect: true,
    // Async stack traces cost an Error per request/publish on the hot path; our errors carry their own context.
    noAsyncTraces: true,
    ...(config.natsCreds ? { authenticator: credsAuthenticator(readFileSync(config.natsCreds)) } : {}),
    ...(config.natsUser ? { user: config.natsUser, pass: config.natsPass ?? '' } : {}),
    ...natsTlsOptions(config.natsCa, config.natsTlsServerName),
  })
}
