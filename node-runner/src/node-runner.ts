/**
 * The node-runner daemon: connects to NATS, announces itself, and turns signed
 * writs for this node into runs — verified, journaled, executed, answered.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node'
import { jetstream, type JetStreamClient } from '@nats-io/jetstream'
import { pino, type Logger } from 'pino'
import { PackCatalog } from '@writ/packs'
import {
  PROTOCOL_VERSION, subjects, type Heartbeat, type Refusal, type RunResult, type WritAck,
} from '@writ/packs/protocol'
import type { ApproverRegistry } from '@writ/packs/approvers'
import { ignoredNomadTlsSettings, nomadTargetFrom, type RunnerConfig } from './runner-config.js'
import { describeError } from './clients/api-errors.js'
import { connectRunner } from './runner-connection.js'
import { RunJournal } from './run-journal.js'
import { ResultSpool } from './result-spool.js'
import { claimedRunId, verifyWrit, type Verdict } from './writ-verifier.js'
import { openPasskeyGate } from './passkey-gate.js'
import { refusalResult, runAcceptedWrit, type AcceptedWrit, type RunTargets } from './run-execution.js'
import type { HttpClients } from './executors/execution-outcome.js'
import { ResultPublisher } from './result-publisher.js'
import { RUNNER_VERSION } from './version.js'
import { LiveCatalog } from './live-catalog.js'
import { throttledRefusalLog } from './refusal-log.js'
import { RunnerMetrics, serveRunnerHttp } from './runner-metrics.js'
import { loadTrustedKeys } from './trusted-keys.js'
import { cancelHandler } from './cancel-handler.js'
import { inheritedFrom } from './inherited-env.js'
import { ChecksInFlight, acceptedEntry } from './writ-admission.js'

export interface NodeRunner {
  readonly nodeId: string
  readonly catalog: PackCatalog
  /** Runs in flight right now. */
  inFlight(): number
  /** The approver registry in force, when passkey approvals are configured. */
  approverRegistry(): ApproverRegistry | undefined
  /** Stop taking writs, let in-flight runs finish (bounded by drainTimeoutMs), publish their results, disconnect. */
  drain(): Promise<void>
  /** Immediate stop: aborts in-flight runs. */
  close(): Promise<void>
  /** Reports an exception that escaped everything else (the CLI routes unhandled rejections here): logged, counted, survived. */
  internalError(e: unknown, where: string): void
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()


/** What a runner can be given besides its config: API clients in place of the real ones (tests inject failing clients). */
export interface RunnerDeps {
  httpClients?: Partial<HttpClients>
  /** Where `inheritEnv` values are read from at each run; process.env unless given (`packs test` sets a case's environment). */
  environment?: () => NodeJS.ProcessEnv
}

export async function startNodeRunner(
  config: RunnerConfig, log: Logger = pino({ level: config.logLevel, name: 'writ-node-runner' }), deps: RunnerDeps = {},
): Promise<NodeRunner> {
  const announce = (c: PackCatalog): void => {
    for (const e of c.load.errors) log.warn({ file: e.file, field: e.field, action: e.action }, `pack load error: ${e.message}`)
    log.info({ packs: c.packs.map((p) => `${p.id}@${p.version}:${p.digest.slice(0, 12)}`), actions: c.size }, 'packs loaded')
  }
  const live = new LiveCatalog(config.packDirs, (c) => { announce(c); heartbeat() })
  announce(live.cached)
  const trusted = loadTrustedKeys(config.trustedKeys)
  const targets: RunTargets = {
    nomad: nomadTargetFrom(config), docker: { socketPath: config.dockerSocket }, kernelLogFile: config.kernelLogFile, clients: deps.httpClients,
    ...(config.inheritEnv.length > 0 ? { inheritedEnv: inheritedFrom(config.inheritEnv, deps.environment ?? (() => process.env)) } : {}),
  }
  if (config.nomadToken && /^http:\/\/(?!127\.0\.0\.1[:/]|localhost[:/]|\[::1\][:/])/.test(config.nomadAddr)) {
    log.warn({ nomadAddr: config.nomadAddr }, 'the Nomad token goes over plain http to a non-loopback address; use https (NOMAD_CACERT) or the Task API socket')
  }
  const ignoredTls = ignoredNomadTlsSettings(config)
  if (ignoredTls.length > 0) {
    log.warn({ nomadAddr: config.nomadAddr, ignored: ignoredTls }, `ignoring ${ignoredTls.join(', ')}: the Task API socket takes no TLS settings (inherited from the Nomad agent's environment?)`)
  }
  const journal = RunJournal.open(config.journal, {
    clockSkewMs: config.clockSkewMs, maxWritLifetimeMs: config.maxWritLifetimeMs,
    rotateEntries: config.journalRotateEntries, keepRotated: config.journalKeepRotated,
  })
  // Checked before anything connects: a registry that does not verify, has expired, or is older than the
  // newest this runner accepted (the journal remembers it) stops the runner with the reason.
  const passkeys = config.approversRegistry
    ? await openPasskeyGate(config.approversRegistry, { approvers: loadTrustedKeys(config.approversKeys), dispatch: trusted }, log, config.approversReloadMs, journal)
      .catch(async (e: unknown) => { await journal.close(); throw e })
    : undefined
  const spool = new ResultSpool(`${config.journal}.spool`)
  const startedAt = new Date().toISOString()

  const nc: NatsConnection = await connectRunner(config)
  log.info({ server: nc.getServer(), nodeId: config.nodeId, nodeName: config.nodeName }, 'connected to NATS')
  const metrics = new RunnerMetrics()
  metrics.connected = true
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') {
        metrics.connected = s.type === 'reconnect'
        log.warn({ event: s.type, server: s.server }, 'NATS connection change')
      }
    }
  })()
  const http = config.metricsListen ? await serveRunnerHttp(config.metricsListen, metrics) : undefined
  const js: JetStreamClient = jetstream(nc)

  let draining = false
  let closed = false
  let seq = 0
  const runs = new Map<string, AbortController>()
  const runPromises = new Set<Promise<void>>()

  const heartbeat = (): void => {
    const hb: Heartbeat = {
      v: PROTOCOL_VERSION, node_id: config.nodeId, node_name: config.nodeName, version: RUNNER_VERSION,
      started_at: startedAt, at: new Date().toISOString(), seq: seq++, draining, interval_ms: config.heartbeatIntervalMs,
      in_flight: runs.size,
      packs: live.cached.packs.map((p) => ({ id: p.id, version: p.version, digest: p.digest, actions: p.actions.size })),
      nomad: config.nomad,
      ...(passkeys ? { approver_registry: passkeys.mark } : {}),
    }
    nc.publish(subjects.heartbeat(config.nodeId), encoder.encode(JSON.stringify(hb)))
  }
  const hbTimer = setInterval(heartbeat, config.heartbeatIntervalMs)
  heartbeat()

  const results = new ResultPublisher(js, config.nodeId, journal, spool, log)
  const publishResult = (result: RunResult): Promise<void> => results.publish(result)
  results.recover()

  const refusalLog = throttledRefusalLog(log)

  /** An exception the runner survived: logged with its cause and counted (writ_runner_internal_errors_total). */
  const internalError = (e: unknown, where: string): void => {
    metrics.countInternalError()
    log.error({ err: describeError(e), where }, 'internal error; the runner goes on')
  }
  /** Follows a writ's work to its end for the drain; whatever it rejects with is an internal error, never the process's end. */
  const track = (p: Promise<unknown>): void => {
    const settled = p.then(() => undefined, (e: unknown) => internalError(e, 'handling a writ'))
    runPromises.add(settled)
    void settled.finally(() => runPromises.delete(settled))
  }

  const reply = (msg: Msg, ack: WritAck): void => { if (msg.reply) msg.respond(encoder.encode(JSON.stringify(ack))) }

  /** Writs whose passkey approvals are being checked: their run ids and the grant uses they hold. */
  const checking = new ChecksInFlight()

  const refuse = (msg: Msg, verdict: Extract<Verdict, { ok: false }>): void => {
    const runId = verdict.runId
    metrics.countRefusal(verdict.refusal.code)
    const verified = verdict.writ
    // An expired writ is anyone's to replay (a captured old one), so it is counted like a forgery.
    if (verified && !journal.has(runId) && verdict.refusal.code !== 'expired') {
      // A verified writ burns its run id, on the record with its request hash (a witness of the audit chain).
      log.warn({ runId, code: verdict.refusal.code }, `writ refused: ${verdict.refusal.message}`)
      journal.append('refused', runId, { code: verdict.refusal.code, message: verdict.refusal.message, request_hash: verified.request_hash, expires_at: verified.expires_at })
        .catch((e: Error) => log.error({ runId, err: e.message }, 'could not journal a refusal'))
    } else {
      // Forged, malformed or repeated input anyone on the subject could send: counted, not synced line by line.
      refusalLog(verdict.refusal.code, runId, verdict.refusal.message)
      journal.countRefusal(verdict.refusal.code, runId)
    }
    reply(msg, { v: PROTOCOL_VERSION, run_id: runId, node_id: config.nodeId, accepted: false, refusal: verdict.refusal })
    if (verified && verdict.refusal.code !== 'replayed' && verdict.refusal.code !== 'wrong_node') {
      void publishResult(refusalResult(verified, verdict.refusal))
    }
  }

  const onWrit = (msg: Msg): void => {
    let raw: unknown
    try { raw = JSON.parse(decoder.decode(msg.data)) } catch { raw = undefined }
    const verdict: Verdict = draining
      ? { ok: false as const, runId: claimedRunId(raw), refusal: { code: 'draining' as const, message: 'runner is draining for shutdown; no new writs' } }
      : verifyWrit(raw, {
        nodeId: config.nodeId, trusted, catalog: (packId) => live.current(packId), seen: (id) => journal.has(id) || checking.has(id),
        allowShellPacks: config.allowShellPacks, clockSkewMs: config.clockSkewMs, maxWritLifetimeMs: config.maxWritLifetimeMs,
        runnerDirs: { nomad_data_dir: config.nomadDataDir }, grantUses: (id) => journal.grantUses(id) + checking.heldUses(id),
      })
    if (!verdict.ok) return refuse(msg, verdict)
    if (!passkeys || !passkeys.needsCheck(verdict)) return accept(msg, verdict)
    // Passkey signatures are checked off the synchronous path; the run id is held meanwhile.
    const registry = passkeys.registry
    const { serial, digest } = passkeys.mark
    const runId = verdict.writ.run_id
    const release = checking.hold(verdict)
    const p = passkeys.check(verdict, registry).then((check) => {
      release()
      if (!check.ok) return refuse(msg, { ok: false, runId, writ: verdict.writ, refusal: { code: check.code, message: check.message } satisfies Refusal })
      accept(msg, verdict, { passkeys: { verified: check.verified.map((v) => ({ by: v.by, credential_id: v.credential_id })), registry_issued_at: registry.issued_at, registry_serial: serial, registry_digest: digest } })
    }, (e: Error) => {
      release()
      refuse(msg, { ok: false, runId, writ: verdict.writ, refusal: { code: 'bad_passkey', message: `the passkey approvals could not be checked: ${e.message}` } })
    })
    track(p)
  }

  const accept = (msg: Msg, verdict: AcceptedWrit, checked: Record<string, unknown> = {}): void => {
    if (runs.size >= config.maxConcurrentRuns) {
      const refusal = { code: 'target_unavailable' as const, message: `runner is at its limit of ${config.maxConcurrentRuns} concurrent runs` }
      journal.append('refused', verdict.writ.run_id, { code: refusal.code, message: refusal.message, request_hash: verdict.writ.request_hash, expires_at: verdict.writ.expires_at })
        .catch((e: Error) => log.error({ runId: verdict.writ.run_id, err: e.message }, 'could not journal a refusal'))
      reply(msg, { v: PROTOCOL_VERSION, run_id: verdict.writ.run_id, node_id: config.nodeId, accepted: false, refusal })
      void publishResult(refusalResult(verdict.writ, refusal))
      return
    }
    // The run id is taken now (a redelivery from here on is a replay) and the
    // entry is on disk before the writ is acknowledged or anything runs.
    const runId = verdict.writ.run_id
    const ac = new AbortController()
    runs.set(runId, ac)
    // Tracked from acceptance, so a drain waits for a run still on its way to the disk.
    const p = journal.append('accepted', runId, acceptedEntry(verdict, checked)).then(
      async () => {
        reply(msg, { v: PROTOCOL_VERSION, run_id: runId, node_id: config.nodeId, accepted: true })
        // The client sends the ack at the end of this tick; starting the run
        // after it keeps a process spawn (milliseconds of blocked loop) from
        // holding the ack back, so the control plane records `running` while
        // the action runs instead of racing its result.
        await new Promise((r) => setImmediate(r))
        await run(verdict, ac)
      },
      (e: Error) => {
        runs.delete(runId)
        const refusal = { code: 'journal_unavailable' as const, message: `the runner cannot record the run durably, so it will not run it: ${e.message}` }
        log.error({ runId }, refusal.message)
        reply(msg, { v: PROTOCOL_VERSION, run_id: runId, node_id: config.nodeId, accepted: false, refusal })
      },
    )
    track(p)
  }

  /** Runs an accepted writ and publishes its result; never rejects, whatever the action, its client or the spool does. */
  const run = async (v: AcceptedWrit, ac: AbortController): Promise<void> => {
    const runId = v.writ.run_id
    metrics.inFlight = runs.size
    // A child logger per run only when its lines are written.
    const runLog = log.isLevelEnabled('info') ? log.child({ runId, action: v.writ.action }) : undefined
    runLog?.info({ requester: v.writ.requester.id }, 'run started')
    let chunkSeq = 0
    const { result, internalError: failure } = await runAcceptedWrit(v, targets, {
      nodeId: config.nodeId, multipathdSockets: config.multipathdSockets, signal: ac.signal,
      onChunk: (stream, data) => {
        if (closed) return
        nc.publish(subjects.output(config.nodeId, runId), encoder.encode(JSON.stringify({ v: PROTOCOL_VERSION, run_id: runId, seq: chunkSeq++, stream, data })))
      },
    })
    if (failure !== undefined) internalError(failure, `run ${runId} (${v.writ.action})`)
    if (result.refusal) {
      runLog?.warn({ code: result.refusal.code }, `run refused before it started: ${result.refusal.message}`)
      metrics.countRefusal(result.refusal.code)
    }
    runs.delete(runId)
    metrics.countRun(result.status)
    metrics.inFlight = runs.size
    runLog?.info({ status: result.status, exitCode: result.exit_code, durationMs: result.duration_ms }, 'run finished')
    await publishResult(result).catch((e: Error) => log.error({ runId, err: e.message }, 'could not publish or spool a result'))
  }

  const onCancel = cancelHandler({ nodeId: config.nodeId, trusted, runs, log })

  const subs: Subscription[] = [
    nc.subscribe(subjects.run(config.nodeId), { callback: (err, msg) => { if (!err) onWrit(msg) } }),
    nc.subscribe(subjects.cancel(config.nodeId), { callback: (err, msg) => { if (!err) onCancel(msg) } }),
  ]
  await nc.flush()
  // Only now does a writ reach this runner: /readyz and this line say so (connecting alone does not).
  metrics.listening = true
  log.info({ subject: subjects.run(config.nodeId) }, 'listening for writs')

  const shutdown = async (abortRuns: boolean): Promise<void> => {
    if (closed) return
    draining = true
    metrics.draining = true
    heartbeat()
    if (abortRuns) for (const ac of runs.values()) ac.abort()
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.drainTimeoutMs).unref())
    if ((await Promise.race([Promise.allSettled([...runPromises]), deadline])) === 'timeout') {
      log.warn({ inFlight: runs.size }, 'drain deadline passed; aborting remaining runs')
      for (const ac of runs.values()) ac.abort()
      await Promise.allSettled([...runPromises])
    }
    await results.close(5000)
    closed = true
    clearInterval(hbTimer)
    for (const s of subs) s.unsubscribe()
    try { await nc.drain() } catch { await nc.close() }
    await journal.close()
    passkeys?.close()
    http?.close()
    log.info('node-runner stopped')
  }

  return {
    nodeId: config.nodeId,
    get catalog() { return live.cached },
    inFlight: () => runs.size,
    approverRegistry: () => passkeys?.registry,
    drain: () => shutdown(false),
    close: () => shutdown(true),
    internalError,
  }
}
