/**
 * Server-rendered pages: Eta with escaping on by default (`<%= %>` escapes,
 * `<%~ %>` is raw and used only for the layout's rendered body). Templates
 * live in code (views/) so a release executable carries them.
 */
import { Eta } from 'eta'
import { LAYOUT } from './views/layout.js'
import { AUDIT, ERROR_PAGE, INBOX, NODES, RUNS } from './views/list-pages.js'
import { OAUTH_CONNECTIONS, OAUTH_CONSENT } from './views/oauth.js'
import { PASSKEYS } from './views/passkeys.js'
import { RUN_PAGE } from './views/run-page.js'
import { DETAILS, EVIDENCE, HAPPENED, OUTPUT, PREVIEW } from './views/run-sections.js'
import { PLAN_PAGE } from './views/plan-page.js'
import { GRANTS_PAGE } from './views/grants-page.js'
import { BREAK_GLASS_FORM, REVIEWS } from './views/break-glass.js'
import { SIGN_IN, SIGN_IN_LINK } from './views/sign-in.js'

export type PageName = '@inbox' | '@run' | '@plan' | '@runs' | '@audit' | '@nodes' | '@sign-in' | '@sign-in-link' | '@error' | '@passkeys' | '@grants' | '@reviews' | '@oauth-consent' | '@oauth-connections'

export function createTemplates(): Eta {
  const eta = new Eta({ autoEscape: true, autoTrim: [false, 'nl'], cache: true })
  const all: Record<string, string> = {
    '@layout': LAYOUT, '@inbox': INBOX, '@run': RUN_PAGE, '@plan': PLAN_PAGE, '@runs': RUNS, '@audit': AUDIT, '@nodes': NODES,
    '@sign-in': SIGN_IN, '@sign-in-link': SIGN_IN_LINK, '@error': ERROR_PAGE, '@passkeys': PASSKEYS, '@grants': GRANTS_PAGE, '@reviews': REVIEWS, '@run-break-glass': BREAK_GLASS_FORM,
    '@oauth-consent': OAUTH_CONSENT, '@oauth-connections': OAUTH_CONNECTIONS,
    '@output': OUTPUT, '@run-happened': HAPPENED, '@run-preview': PREVIEW, '@run-evidence': EVIDENCE, '@run-details': DETAILS,
  }
  for (const [name, text] of Object.entries(all)) eta.loadTemplate(name, text)
  return eta
}
