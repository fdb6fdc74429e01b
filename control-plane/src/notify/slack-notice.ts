/**
 * A Slack notice as it waits in the outbox (`WRIT_NOTIFY`): one thing to tell
 * Slack about one run, with the message already rendered. It crosses NATS, so
 * it is parsed at the edge like any other message.
 */
import { z } from 'zod'

export const SlackNoticeSchema = z.object({
  v: z.literal(1),
  /** Dedupes a repeated enqueue of the same notice (the outbox's message id). */
  id: z.string().min(1).max(200),
  /** `pending` (the run waits for a person), or what became of it (`decided`). */
  kind: z.string().min(1).max(32),
  requester: z.string().min(1).max(128),
  run_id: z.string().min(1).max(64),
  action: z.string().min(1).max(200),
  message: z.object({
    text: z.string().max(4000),
    blocks: z.array(z.unknown()).max(50),
    unfurl_links: z.literal(false),
    unfurl_media: z.literal(false),
  }).strict(),
}).strict()
export type SlackNotice = z.infer<typeof SlackNoticeSchema>
