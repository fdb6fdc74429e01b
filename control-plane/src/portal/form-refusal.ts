/**
 * How a portal form is refused: a typed WRIT_ERR_VALIDATION naming the field
 * (the page shows it beside that field), and — whatever the feature refused
 * it with — the refusal audited like the API's, for the page to show again
 * with the error instead of a bare error page.
 */
import type { FastifyRequest } from 'fastify'
import type { ZodError } from 'zod'
import { auditRejection, detailsOf } from '../http/index.js'

/** A form that does not read: `message` starts with the field's name ("reason: …"). */
export function invalidForm(message: string): Error {
  return Object.assign(new Error(message), { code: 'WRIT_ERR_VALIDATION', statusCode: 400 })
}

/** A zod error over a form, as one message naming each field. */
export function formIssues(error: ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'form'}: ${i.message}`).join('; ')
}

export interface FormRefusal { code: string, message: string, statusCode: number }

/**
 * The typed refusal `err` carries (WRIT_ERR_…), audited as a refusal of
 * `what` with `details`; anything else, and the codes in `passOn` (a run or
 * plan that does not exist: the not-found page), is thrown on.
 */
export async function formRefusal(
  req: FastifyRequest, err: unknown, what: string, details: Record<string, unknown> = {}, passOn: readonly string[] = [],
): Promise<FormRefusal> {
  const e = err as Error & { code?: string, statusCode?: number }
  if (!e.code?.startsWith('WRIT_ERR_') || passOn.includes(e.code)) throw err
  await auditRejection(req, e.code, e.message, { ...details, ...detailsOf(e) })
    .catch((auditErr: unknown) => req.log.error({ err: auditErr }, `cannot audit a refused ${what}`))
  return { code: e.code, message: e.message, statusCode: e.statusCode ?? 400 }
}
