/**
 * Block Kit messages for approvals. The message is a link to the portal
 * (DOMAIN.md "Slack (more)"): a person decides on the run page, never by a
 * button in Slack.
 *
 * Text that writ did not write itself — an agent's reason and expected
 * outcome, the name a runner gives its node, an approver's denial reason, a
 * runner's refusal — goes into `plain_text` objects only: Slack formats
 * `mrkdwn` (`*bold*`, `_italic_`, `>` quotes) even with `verbatim: true`, and
 * parses mentions (`@here`) without it, while `plain_text` shows the text as
 * typed. URLs in that text are defanged (`https[:]//`, `www[.]`) so that no
 * client turns one into a link. mrkdwn carries only writ's own labels and the
 * run link, and the notification text (`text`, which Slack renders as mrkdwn
 * in notifications) holds nothing but catalog ids, principal ids, the run id
 * and a node name that is a plain host name.
 */
import type { Run } from '../runs/index.js'

export interface SlackMessage {
  text: string
  blocks: unknown[]
  unfurl_links: false
  unfurl_media: false
}

/** What the message says about the action, from the catalog, and the run's arguments as a person may read them. */
export interface ActionFacts {
  title: string
  /** The run in one line (the action's summary over its arguments): the message's header. */
  summary: string
  /** The side effects that apply to the run's arguments. */
  side_effects: readonly string[]
  /** The run's arguments, sensitive ones already redacted. */
  args: Readonly<Record<string, unknown>>
}

/** `name=value`, one argument a line, values as JSON where they are not plain strings. */
function argumentLines(args: Readonly<Record<string, unknown>>): string {
  const entries = Object.entries(args).filter(([, v]) => v !== undefined)
  if (entries.length === 0) return 'none'
  return entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('\n')
}

/** Escapes the three characters Slack's mrkdwn gives meaning to (`<@U…>`, `<!channel>`, `<url|text>`). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Breaks every URL in `text` so that no client makes it a link: `https://x` → `https[:]//x`, `www.x` → `www[.]x`. */
export function defangUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*):\/\//gi, '$1[:]//').replace(/\bwww\./gi, 'www[.]')
}

/** ` on <node>` when the node's name is a plain host name (no formatting or mention can hide in it), else nothing. */
const onNode = (run: Run): string => (/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(run.node_name) ? ` on ${run.node_name}` : '')
const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text)
/** Text writ did not write: shown as typed (no emoji codes either), URLs defanged. */
const plain = (text: string, max = 3000) => ({ type: 'plain_text', text: clip(defangUrls(text), max), emoji: false })
/** One of writ's own labels. */
const label = (text: string) => ({ type: 'mrkdwn', text: `*${text}*` })
/** A labelled paragraph: the label in mrkdwn, the value as plain text beneath it. */
const paragraph = (name: string, value: string) => [{ type: 'section', text: label(name) }, { type: 'section', text: plain(value) }]

export function pendingMessage(run: Run, action: ActionFacts, url: string): SlackMessage {
  const expires = run.approval?.expires_at ?? ''
  const quorum = run.approval?.quorum ?? 1
  const sideEffects = action.side_effects.length > 0 ? action.side_effects.map((s) => `• ${s}`).join('\n') : 'none declared'
  return {
    text: clip(escapeMrkdwn(`Approval needed: ${run.action}${onNode(run)} (${run.risk} risk), requested by ${run.requester.id} — run ${run.id}`), 3000),
    unfurl_links: false,
    unfurl_media: false,
    blocks: [
      // The concrete change first: agent-chosen argument values in it are plain_text, URLs defanged, like every other.
      { type: 'header', text: plain(action.summary, 150) },
      {
        type: 'section',
        fields: [
          label('Action'), plain(`${action.title} · ${run.action} (${run.risk} risk)`, 2000),
          label('Node'), plain(run.node_name, 2000),
          label('Requested by'), plain(run.requester.id, 2000),
          label('Expires'), plain(`${expires}${quorum > 1 ? ` · needs ${quorum} approvers` : ''}`, 2000),
        ],
      },
      ...paragraph('Arguments', argumentLines(action.args)),
      ...paragraph('Reason', run.reason),
      ...(run.expected ? paragraph('Expected outcome', run.expected) : []),
      ...paragraph('What it changes', sideEffects),
      {
        type: 'actions',
        elements: [{ type: 'button', text: plain('Review', 75), url, style: 'primary', action_id: 'writ_review' }],
      },
      { type: 'context', elements: [plain(`Run ${run.id} · decide on the run page; opening the link changes nothing`)] },
    ],
  }
}

/**
 * What became of a run: `headline` holds ids only (it is the notification
 * text too); `detail` is free text (a denial reason, a runner's refusal).
 */
function outcomeOf(run: Run): { headline: string, detail?: string | undefined } {
  const a = run.approval
  if (a?.denial) return { headline: `Denied by ${a.denial.by}`, detail: a.denial.reason }
  if (run.status === 'expired') return { headline: `Expired: no decision by ${a?.expires_at ?? 'the deadline'}` }
  if (!a?.approved_at) return { headline: run.status, detail: run.status_reason }
  if (a.break_glass) {
    const bg = `BREAK-GLASS by ${a.break_glass.by}, alone (quorum ${a.quorum}); review ${a.break_glass.review_id} waits for another approver`
    if (run.status === 'refused_by_runner' || run.status === 'node_offline') return { headline: `${bg}; then ${run.status}`, detail: `${a.break_glass.reason} — ${run.status_reason}` }
    return { headline: `${bg}; dispatched to the node`, detail: a.break_glass.reason }
  }
  const approved = `Approved by ${a.approvals.map((x) => x.by).join(', ')}`
  if (run.status === 'refused_by_runner' || run.status === 'node_offline') return { headline: `${approved}; then ${run.status}`, detail: run.status_reason }
  return { headline: `${approved}; dispatched to the node` }
}

/** The follow-up once the run is decided: approved by, denied by (with the reason), or expired. */
export function outcomeMessage(run: Run, url: string): SlackMessage {
  const { headline, detail } = outcomeOf(run)
  const line = `${run.action} on ${run.node_name} (run ${run.id}) — ${headline}${detail ? `: ${detail}` : ''}`
  return {
    text: clip(escapeMrkdwn(`${run.action}${onNode(run)} (run ${run.id}) — ${headline}`), 3000),
    unfurl_links: false,
    unfurl_media: false,
    blocks: [
      { type: 'section', text: plain(line), accessory: { type: 'button', text: plain('Open the run', 75), url, action_id: 'writ_open_run' } },
    ],
  }
}

/** What a summary needs to know of each notice it stands for. */
export interface NoticeFacts { kind: string, action: string }

/**
 * One message for a pile of one requester's notices: how many runs wait for
 * approval (and how many outcomes), by action, and the inbox to review them
 * in. It holds ids and counts only.
 */
export function summaryMessage(requester: string, notices: readonly NoticeFacts[], inboxUrl: string): SlackMessage {
  const waiting = notices.filter((n) => n.kind === 'pending').length
  const others = notices.length - waiting
  const parts = [
    ...(waiting > 0 ? [`${waiting} more run${waiting === 1 ? '' : 's'} waiting for approval`] : []),
    ...(others > 0 ? [`${others} more run outcome${others === 1 ? '' : 's'}`] : []),
  ]
  const headline = `${requester} has ${parts.join(' and ')}`
  const byAction = new Map<string, number>()
  for (const n of notices) byAction.set(n.action, (byAction.get(n.action) ?? 0) + 1)
  const top = [...byAction].sort((a, b) => b[1] - a[1])
  const actions = top.slice(0, 5).map(([a, n]) => `${a} ×${n}`).join(', ') + (top.length > 5 ? `, and ${top.length - 5} more actions` : '')
  return {
    text: clip(escapeMrkdwn(`${headline} — review them in the inbox`), 3000),
    unfurl_links: false,
    unfurl_media: false,
    blocks: [
      { type: 'section', text: plain(headline), accessory: { type: 'button', text: plain('Open the inbox', 75), url: inboxUrl, style: 'primary', action_id: 'writ_inbox' } },
      { type: 'context', elements: [plain(`${actions} · one message for them all, so that no requester can flood this channel`)] },
    ],
  }
}

/**
 * The message as lines of text, for where there is no Slack (`writ dev` prints
 * them): the notification text, then each block's text, labels and values.
 * Nothing is escaped here; the printer escapes for its terminal.
 */
export function messageLines(message: SlackMessage): string[] {
  const lines = [message.text]
  const textOf = (o: unknown): string | undefined => {
    const t = (o as { type?: unknown, text?: unknown } | null)
    if (!t || typeof t.text !== 'string') return undefined
    // writ's own labels are the only mrkdwn: shown without their asterisks.
    return t.type === 'mrkdwn' ? t.text.replace(/^\*(.*)\*$/s, '$1') : t.text
  }
  for (const block of message.blocks as Array<Record<string, unknown>>) {
    const fields = Array.isArray(block.fields) ? block.fields.map(textOf) : []
    for (let i = 0; i + 1 < fields.length; i += 2) lines.push(`  ${fields[i] ?? ''}: ${fields[i + 1] ?? ''}`)
    const text = textOf(block.text)
    if (text !== undefined) lines.push(...text.split('\n').map((l) => `  ${l}`))
    for (const e of Array.isArray(block.elements) ? block.elements : []) {
      const url = (e as { url?: unknown }).url
      const shown = textOf(e) ?? textOf((e as { text?: unknown }).text)
      if (shown !== undefined) lines.push(`  ${shown}${typeof url === 'string' ? `: ${url}` : ''}`)
    }
  }
  return lines
}
