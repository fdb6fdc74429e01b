/**
 * The guest files that make the runner job's task in scenario 5: what its
 * artifacts and templates put in the task folder, the files its flags name
 * (NATS credentials, the journal's folder), and /lab/host-agent.sh, the
 * launcher with the job's command line and environment and nothing else.
 */
import { createHash, randomUUID } from 'node:crypto'
import { basename, posix } from 'node:path'
import { createAccount, createUser } from '@nats-io/nkeys'
import { flagValues, shellQuote, type HostAgent } from './host-agent-job.js'
import type { LabFile } from './lab-vm.js'

/** A NATS user creds file for the node, as `nsc generate creds` writes it (the user JWT is named after the node id). */
export function natsCreds(nodeId: string): string {
  const account = createAccount()
  const user = createUser()
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const claims = {
    jti: createHash('sha256').update(randomUUID()).digest('base64url'), iat: Math.floor(Date.now() / 1000),
    iss: account.getPublicKey(), name: nodeId, sub: user.getPublicKey(),
    nats: {
      pub: { allow: [`writ.v1.node.${nodeId}.heartbeat`, `writ.v1.node.${nodeId}.output.*`, `writ.v1.node.${nodeId}.result.*`, `writ.v1.node.${nodeId}.event.*`] },
      sub: { allow: [`writ.v1.node.${nodeId}.run`, `writ.v1.node.${nodeId}.cancel`, '_INBOX.>'] },
      subs: -1, data: -1, payload: -1, type: 'user', version: 2,
    },
  }
  const head = `${b64({ typ: 'JWT', alg: 'ed25519-nkey' })}.${b64(claims)}`
  const jwt = `${head}.${Buffer.from(account.sign(Buffer.from(head))).toString('base64url')}`
  return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${new TextDecoder().decode(user.getSeed())}\n------END USER NKEY SEED------\n`
}

/** The guest files that make the job's task: its artifacts and templates, the files its flags name, and a launcher with its command line and environment. */
export function taskFiles(jobFile: string, agent: HostAgent, release: { runner: string, packsDir: string }, creds: string): LabFile[] {
  const files: LabFile[] = []
  for (const f of agent.files) {
    if (f.kind === 'template') files.push({ guestPath: f.path, content: f.content ?? '' })
    else if (/writ-node-runner-linux-x64$/.test(f.source ?? '')) files.push({ guestPath: f.path, from: release.runner, mode: 0o644 }) // as go-getter leaves it: without +x
    else if (/writ-packs-[^/]+\.tar\.gz$/.test(f.source ?? '')) files.push({ guestPath: f.path, fromDir: release.packsDir })
    else throw new Error(`the job fetches an artifact the lab does not know: ${f.source}`)
  }
  for (const path of flagValues(agent.argv, 'nats-creds')) files.push({ guestPath: path, content: creds, mode: 0o600 })
  for (const path of flagValues(agent.argv, 'journal')) files.push({ guestPath: posix.join(posix.dirname(path), '.keep'), content: '' })
  const cwd = agent.driver === 'docker' ? '/' : agent.taskDir
  const command = agent.argv[0] as string
  const launcher = [
    '#!/bin/sh',
    `# ${basename(jobFile)}, task "${agent.task}" (driver ${agent.driver}), as the lab runs it`,
    `cd ${shellQuote(cwd)} || exit 1`,
    // raw_exec/exec: Nomad's executor marks the command executable before starting it (docker jobs do it in their entrypoint).
    ...(agent.driver === 'docker' ? [] : [`chmod 0755 ${shellQuote(command)}`]),
    `exec env -i ${Object.entries(agent.env).map(([k, v]) => shellQuote(`${k}=${v}`)).join(' ')} \\`,
    `  ${agent.argv.map(shellQuote).join(' ')}`,
    '',
  ].join('\n')
  files.push({ guestPath: '/lab/host-agent.sh', content: launcher, mode: 0o755 })
  return files
}
