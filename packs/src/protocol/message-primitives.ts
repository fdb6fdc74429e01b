/**
 * The building blocks every wire message is made of: ids, digests, times,
 * argument values, principals, base64url fields.
 */
import { z } from 'zod'
import { NODE_ID_RE, RUN_ID_RE } from './subjects.js'

export const NodeId = z.string().regex(NODE_ID_RE)
export const RunId = z.string().regex(RUN_ID_RE)
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/)
export const IsoTime = z.string().datetime({ offset: true })

export const ArgValueSchema = z.union([z.string(), z.number(), z.boolean(), z.array(z.string()), z.array(z.number())])

export const PrincipalRefSchema = z.object({ id: z.string().min(1).max(128), kind: z.enum(['agent', 'operator', 'system']) }).strict()

export const Base64Url = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9_-]+$/, 'expected base64url')
