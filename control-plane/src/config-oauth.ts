/**
 * MCP authorization (OAuth 2.1): writ as the authorization server for its own
 * `/mcp`. Part of the config (config.ts); absent, `/mcp` takes static bearer
 * tokens only.
 */
import { z } from 'zod'
import { parseDuration } from '@writ/packs'
import { Duration } from './config-policy.js'

const HOUR_MS = 3_600_000
const Hostname = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'a lower-case host name (no scheme, port or path)')

export const OAuthConfigSchema = z.object({
  /** How long an access token lasts (at most 1h); the client refreshes it with a rotating refresh token. */
  access_token_ttl: Duration.default('1h').refine((s) => (parseDuration(s) ?? 0) <= HOUR_MS && (parseDuration(s) ?? 0) >= 1000, 'between 1s and 1h'),
  /** How long one consent lasts: the refresh tokens' absolute lifetime. The consent page says until when. */
  grant_ttl: Duration.default('720h'),
  /** Requests per address per minute to the authorization server (`/oauth/*`, its metadata); more get 429. */
  requests_per_minute: z.number().int().min(10).max(100_000).default(300),
  /** RFC 7591 dynamic client registration at `/oauth/reg` (open: anyone may register a client; a person still consents to each). */
  dynamic_registration: z.boolean().default(false),
  /** Client ID metadata documents: a client id that is an https URL of its own metadata, fetched by writ. */
  client_metadata_documents: z.object({
    /** Hosts writ fetches documents from (exact names, e.g. claude.ai); none = no document is fetched. */
    allowed_hosts: z.array(Hostname).default([]),
    /** Largest document accepted, in bytes. */
    max_bytes: z.number().int().min(512).max(64 * 1024).default(5120),
  }).strict().default({ allowed_hosts: [], max_bytes: 5120 }),
}).strict()
export type OAuthConfig = z.infer<typeof OAuthConfigSchema>
