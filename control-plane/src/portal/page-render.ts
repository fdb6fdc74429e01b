/** Renders a page inside the layout with what every page needs: who is signed in, a CSRF token, the assets. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Eta } from 'eta'
import { ASSETS } from './assets.js'
import type { PageName } from './templates.js'
import { pageFormatters } from './time-text.js'

export interface PageFrame {
  title: string
  nav?: 'inbox' | 'runs' | 'audit' | 'nodes' | 'passkeys' | 'grants' | 'reviews' | 'connections'
  /** The page uses passkeys (registration or a passkey-signed approval): load their script. */
  passkeyScript?: boolean
  /** The page follows this run live. */
  liveRun?: { id: string, status: string }
  liveInbox?: boolean
  /** The page follows this plan live: its status and how far it has got (`dispatched/done`). */
  livePlan?: { id: string, status: string, progress: string }
  /** Reload the page this often while something it shows is still moving (a plan rolling out); works without the script. */
  refreshSeconds?: number | undefined
}

/** What the header's banner shows of a freeze in force. */
export interface FreezeBanner { scope: string, by: string, at: string, reason: string }

export class PageRenderer {
  constructor(
    private readonly eta: Eta, private readonly pendingCount: () => number, private readonly features: { passkeys: boolean, oauth?: boolean } = { passkeys: false },
    /** Freezes in force: every page says so at the top. */
    private readonly freezes: () => readonly FreezeBanner[] = () => [],
  ) {}

  async page(req: FastifyRequest, reply: FastifyReply, name: PageName, frame: PageFrame, data: Record<string, unknown>, status = 200): Promise<FastifyReply> {
    const operator = req.principal?.id
    const csrf = reply.generateCsrf({ userInfo: operator ?? 'anonymous' })
    const html = this.eta.render(name, {
      ...data, fmt: pageFormatters(), title: frame.title, nav: frame.nav, operator, csrf, assets: { css: ASSETS.css.path, js: ASSETS.js.path, passkeys: ASSETS.passkeys.path },
      passkeysNav: this.features.passkeys, connectionsNav: this.features.oauth ?? false, passkeyScript: frame.passkeyScript ?? false,
      pendingCount: operator ? this.pendingCount() : 0, freezes: operator ? this.freezes() : [],
      liveRun: frame.liveRun?.id, liveStatus: frame.liveRun?.status, liveInbox: frame.liveInbox ?? false, refreshSeconds: frame.refreshSeconds,
      livePlan: frame.livePlan,
    })
    return reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html)
  }
}
