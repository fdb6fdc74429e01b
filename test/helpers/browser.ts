/**
 * A real browser for portal tests: Debian's chromium driven by
 * playwright-core (never a downloaded browser), headless, with a fresh
 * profile. Missing chromium fails loudly: `.ci/run` installs it.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core'
import { REPO_ROOT } from '../doubles/fixtures-dir.js'

export const CHROMIUM = '/usr/bin/chromium'
/** Screenshots and transcripts tests leave for people to look at (git-ignored). */
export const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts')

export interface BrowserHandle { browser: Browser, context(viewport?: { width: number, height: number }): Promise<BrowserContext>, close(): Promise<void> }

export async function launchBrowser(): Promise<BrowserHandle> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); .ci/run does`)
  // launch() gives every browser a fresh, temporary profile of its own (it refuses --user-data-dir).
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  return {
    browser,
    context: (viewport = { width: 1280, height: 900 }) => browser.newContext({ viewport }),
    close: () => browser.close(),
  }
}

export function artifactsDir(): string {
  mkdirSync(ARTIFACTS, { recursive: true })
  return ARTIFACTS
}

/**
 * Signs `page` in with an operator token the way a person does: opens `url`
 * (a page that asks to sign in, or the sign-in page itself), fills the token,
 * presses Sign in, and waits until the portal lands on `landing` (a URL or a
 * glob; default `url`).
 */
export async function signInWithToken(page: Page, url: string, token: string, landing: string | RegExp = url): Promise<void> {
  await page.goto(url)
  await page.getByLabel('Operator token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(landing)
}

/**
 * A page on a phone-sized context whose browser has a platform passkey
 * authenticator (Chromium's virtual one: user-verifying, resident keys), for
 * registering and signing with passkeys without a person at a device.
 */
export async function pageWithAuthenticator(browser: BrowserHandle): Promise<{ page: Page, cdp: CDPSession, authenticatorId: string }> {
  const context = await browser.context({ width: 390, height: 844 })
  const page = await context.newPage()
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable', { enableUI: false })
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  })
  return { page, cdp, authenticatorId }
}
