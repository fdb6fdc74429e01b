/**
 * Starts the real node-runner (in-process) against a control-plane fixture:
 * same pack folders, the fixture's public key trusted, a journal in the
 * fixture's folder.
 */
import { pino } from 'pino'
import { RunnerConfigSchema, startNodeRunner, type NodeRunner } from '@writ/node-runner'
import { runnerJournalPath, type CpFixture } from './cp-fixtures.js'

export async function startRealRunner(fx: CpFixture, natsUrl: string, nodeId: string, extra: Record<string, unknown> = {}): Promise<NodeRunner> {
  const config = RunnerConfigSchema.parse({
    natsUrl, nodeId, nodeName: nodeId, packDirs: fx.config.packs.dirs, trustedKeys: [fx.publicKeyFile],
    journal: runnerJournalPath(fx, nodeId), heartbeatIntervalMs: 200, logLevel: 'silent', drainTimeoutMs: 2000, ...extra,
  })
  return startNodeRunner(config, pino({ level: process.env.WRIT_TEST_LOG ?? 'silent' }))
}
