/**
 * Block Kit messages for approvals. The message is a link to the portal
 * (DOMAIN.md "Slack (more)"): a person decides on the run page, never by a
 * button in Slack. Everything an agent wrote is escaped for mrkdwn, so a
 * reason cannot mention `@channel` or smuggle a link with other text.
 */
import type { Run } from '../runs/index.js'

export interface SlackMessage {
  text: string
  blocks: unknown[]
  unfurl_links: false
  unfurl_media: false
}

/** What the message says about the action, from the catalog. */
export interface ActionFacts { title: string, side_effects: readonly string[] }

/** Escapes the three characters Slack's mrkdwn gives meaning to (`<@U…>`, `<!channel>`, `<url|text>`). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text)
const field = (label: string, value: string) => ({ type: 'mrkdwn', text: clip(`*${label}*\n${escapeMrkdwn(value)}`, 2000) })

export function pendingMessage(run: Run, action: ActionFacts, url: string): SlackMessage {
  const expires = run.approval?.expires_at ?? ''
  const quorum = run.approval?.quorum ?? 1
  const sideEffects = action.side_effects.length > 0 ? action.side_effects.map((s) => `• ${escapeMrkdwn(s)}`).join('\n') : '_none declared_'
  return {
    // The fallback text is mrkdwn too (notifications show it): escaped like the blocks.
    text: clip(escapeMrkdwn(`Approval needed: ${run.action} on ${run.node_name} (${run.risk} risk), requested by ${run.requester.id}: ${run.reason}`), 3000),
    unfurl_links: false,
    unfurl_media: false,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(`Approval needed: ${action.title}`, 150) } },
      {
        type: 'section',
        fields: [
          field('Action', `${run.action} (${run.risk} risk)`),
          field('Node', run.node_name),
          field('Requested by', run.requester.id),
          field('Expires', `${expires}${quorum > 1 ? ` · needs ${quorum} approvers` : ''}`),
        ],
      },
      { type: 'section', text: { type: 'mrkdwn', text: clip(`*Reason*\n${escapeMrkdwn(run.reason)}`, 3000) } },
      ...(run.expected ? [{ type: 'section', text: { type: 'mrkdwn', text: clip(`*Expected outcome*\n${escapeMrkdwn(run.expected)}`, 3000) } }] : []),
      { type: 'section', text: { type: 'mrkdwn', text: clip(`*What it changes*\n${sideEffects}`, 3000) } },
      {
        type: 'actions',
        elements: [{ type: 'button', text: { type: 'plain_text', text: 'Review' }, url, style: 'primary', action_id: 'writ_review' }],
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: escapeMrkdwn(`Run ${run.id} · decide on the run page; opening the link changes nothing`) }] },
    ],
  }
}

/** The follow-up once the run is decided: approved by, denied by (with the reason), or expired. */
export function outcomeMessage(run: Run, url: string): SlackMessage {
  const a = run.approval
  let text: string
  if (a?.denial) text = `Denied by ${a.denial.by}: ${a.denial.reason}`
  else if (run.status === 'expired') text = `Expired: no decision by ${a?.expires_at ?? 'the deadline'}`
  else if (a?.approved_at) text = `Approved by ${a.approvals.map((x) => x.by).join(', ')}; ${run.status === 'refused_by_runner' || run.status === 'node_offline' ? `then ${run.status}: ${run.status_reason}` : 'dispatched to the node'}`
  else text = `${run.status}: ${run.status_reason}`
  const line = `${run.action} on ${run.node_name} (run ${run.id}) — ${text}`
  return {
    text: clip(escapeMrkdwn(line), 3000),
    unfurl_links: false,
    unfurl_media: false,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: clip(`${escapeMrkdwn(line)}\n<${url}|Open the run>`, 3000) } },
    ],
  }
}
