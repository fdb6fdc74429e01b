/** Run statuses in plain words, with the tone a page colours them in. */
import type { RunStatus } from '../runs/index.js'

const WORDS: Record<RunStatus, { label: string, tone: 'wait' | 'ok' | 'bad' | 'busy' }> = {
  pending_approval: { label: 'Waiting for approval', tone: 'wait' }, approved: { label: 'Approved', tone: 'busy' },
  dispatched: { label: 'Sent to the node', tone: 'busy' }, running: { label: 'Running', tone: 'busy' },
  succeeded: { label: 'Succeeded', tone: 'ok' }, failed: { label: 'Failed', tone: 'bad' }, denied: { label: 'Denied', tone: 'bad' },
  expired: { label: 'Expired without a decision', tone: 'bad' }, node_offline: { label: 'Node offline', tone: 'bad' },
  refused_by_runner: { label: 'Refused by the runner', tone: 'bad' }, timed_out: { label: 'Timed out', tone: 'bad' },
  canceled: { label: 'Canceled', tone: 'bad' }, lost: { label: 'Lost (no result came back)', tone: 'bad' },
}

export function statusWords(status: string): { label: string, tone: string } {
  return WORDS[status as RunStatus] ?? { label: status, tone: '' }
}
