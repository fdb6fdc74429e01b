/**
 * Who may publish and subscribe to what on NATS — the one source the
 * deployment's credentials (`writ nats permissions`, terraform/README.md
 * "NATS authorization") and the permission tests are made from.
 *
 * A runner reaches only its own node's subjects and its own reply inbox:
 * never another node's writs, the control plane's inbox (which carries KV
 * watch deliveries of run records), `$KV.>`, the JetStream API or the audit
 * subjects. Each party has its own inbox prefix for that reason: with the
 * default `_INBOX.` a subscription to replies is a subscription to everyone's.
 */
import { SUBJECT_ROOT } from './subjects.js'

/** A user's permissions in the shape NATS user JWTs (and nsc) take. */
export interface NatsPermissions {
  pub: { allow: string[] }
  sub: { allow: string[] }
  /** Replies to requests it received: at most `max` each, with no time limit (`ttl: 0`). */
  resp?: { max: number, ttl: number }
}

/** The control plane's inbox prefix (every instance shares the control plane's user). */
export const CONTROL_PLANE_INBOX_PREFIX = '_INBOX_writ_cp'

/** The inbox prefix of `writ audit` (verify, export) under the auditor user. */
export const AUDITOR_INBOX_PREFIX = '_INBOX_writ_audit'

/** The audit stream (control-plane/src/nats/jetstream-setup.ts creates it); named here for the auditor's permissions. */
const AUDIT_STREAM = 'WRIT_AUDIT'

/**
 * A runner's inbox prefix. The node id is a subject token of its own because
 * a signing-key template (`{{name()}}`, the user's name, which is the node id)
 * only stands for a whole token (nats-server 2.9: `_INBOX_{{name()}}` stays
 * literal).
 */
export function runnerInboxPrefix(nodeId: string): string {
  return `_INBOX_node.${nodeId}`
}

/**
 * A runner's permissions. `nodeId` is the node id, or the template
 * `{{name()}}` for a scoped signing key that serves every node.
 */
export function runnerPermissions(nodeId: string): NatsPermissions {
  const own = `${SUBJECT_ROOT}.node.${nodeId}`
  return {
    sub: { allow: [`${own}.run`, `${own}.cancel`, `${runnerInboxPrefix(nodeId)}.>`] },
    pub: { allow: [`${own}.heartbeat`, `${own}.output.*`, `${own}.result.*`, `${own}.event.*`] },
    resp: { max: 1, ttl: 0 },
  }
}

/**
 * The control plane's permissions: writs and cancels to any node, the audit
 * subject, the Slack outbox, plans' progress logs, its streams and buckets through the JetStream
 * API, and the fleet's heartbeats and live output.
 */
export function controlPlanePermissions(): NatsPermissions {
  return {
    pub: {
      allow: [
        `${SUBJECT_ROOT}.node.*.run`, `${SUBJECT_ROOT}.node.*.cancel`, `${SUBJECT_ROOT}.audit.>`, `${SUBJECT_ROOT}.notify.>`, `${SUBJECT_ROOT}.plans.>`,
        '$JS.API.>', '$JS.ACK.>', '$JS.FC.>', '$KV.>',
      ],
    },
    sub: { allow: [`${SUBJECT_ROOT}.node.*.heartbeat`, `${SUBJECT_ROOT}.node.*.output.*`, `${CONTROL_PLANE_INBOX_PREFIX}.>`] },
  }
}

/** The `nsc` commands that give an existing WRIT account these permissions. */
/**
 * A read-only auditor for `writ audit verify|export`: the audit stream's info,
 * single messages, and an ephemeral ordered consumer over it (created,
 * pulled, deleted), replies on its own inbox. Nothing else: no other stream
 * (the run store holds sensitive arguments), no stream updates, purges or
 * message deletes, no writs, no audit appends.
 */
export function auditorPermissions(): NatsPermissions {
  const api = '$JS.API'
  return {
    pub: {
      allow: [
        `${api}.INFO`, `${api}.STREAM.INFO.${AUDIT_STREAM}`, `${api}.STREAM.MSG.GET.${AUDIT_STREAM}`,
        `${api}.CONSUMER.CREATE.${AUDIT_STREAM}`, `${api}.CONSUMER.CREATE.${AUDIT_STREAM}.>`, `${api}.CONSUMER.INFO.${AUDIT_STREAM}.>`,
        `${api}.CONSUMER.MSG.NEXT.${AUDIT_STREAM}.>`, `${api}.CONSUMER.DELETE.${AUDIT_STREAM}.>`,
      ],
    },
    sub: { allow: [`${AUDITOR_INBOX_PREFIX}.>`] },
  }
}

export function nscCommands(): string {
  const r = runnerPermissions('{{name()}}')
  const cp = controlPlanePermissions()
  const au = auditorPermissions()
  const q = (list: string[]): string => `'${list.join(',')}'`
  return [
    '# the node-runner role: a scoped signing key whose permissions are templates on the user name (the Nomad node id)',
    'nsc edit account WRIT --sk generate          # -> <node-runner-sk>',
    'nsc edit signing-key --account WRIT --sk <node-runner-sk> --role node-runner \\',
    `  --allow-sub ${q(r.sub.allow)} \\`,
    `  --allow-pub ${q(r.pub.allow)} \\`,
    `  --allow-pub-response ${r.resp?.max ?? 1}`,
    '# per node, with the id from `nomad node status -verbose`:',
    'nsc add user --account WRIT --name <nomad-node-id> -K node-runner',
    'nsc generate creds --account WRIT --name <nomad-node-id> > node-runner.creds',
    '# the control plane (every instance uses this user)',
    'nsc add user --account WRIT --name writ-control-plane \\',
    `  --allow-pub ${q(cp.pub.allow)} \\`,
    `  --allow-sub ${q(cp.sub.allow)}`,
    'nsc generate creds --account WRIT --name writ-control-plane > control-plane.creds',
    '# a read-only auditor for `writ audit verify|export` (never the control plane\'s credentials)',
    'nsc add user --account WRIT --name writ-auditor \\',
    `  --allow-pub ${q(au.pub.allow)} \\`,
    `  --allow-sub ${q(au.sub.allow)}`,
    'nsc generate creds --account WRIT --name writ-auditor > auditor.creds',
  ].join('\n')
}
