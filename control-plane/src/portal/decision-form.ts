/**
 * The approve and deny forms a run page and a plan page post: the binding the
 * page showed, a comment or a reason, and — where the decision needs one —
 * the passkey assertion the page's script filled in. Read into a decision,
 * or a typed WRIT_ERR_VALIDATION naming the field.
 */
import { z } from 'zod'
import { PasskeyAssertionSchema, type PasskeyAssertion } from '@writ/packs/protocol'
import { formIssues, invalidForm } from './form-refusal.js'

const Binding = z.string().regex(/^[0-9a-f]{64}$/)

const ApproveForm = z.object({
  _csrf: z.string().optional(), binding: Binding, comment: z.string().trim().max(2000).optional(),
  /** The passkey assertion the page's script filled in (JSON), where the decision needs one. */
  passkey: z.string().max(16 * 1024).optional(),
}).strict()

/** `what` names the thing denied in the empty-reason message ("the run", "the plan"). */
const denyForm = (what: string) => z.object({ _csrf: z.string().optional(), binding: Binding, reason: z.string().trim().min(1, `say why ${what} is denied`).max(2000) }).strict()

export type FormDecision =
  | { decision: 'approve', binding: string, comment?: string, passkey?: PasskeyAssertion }
  | { decision: 'deny', binding: string, reason: string }

/** The decision a posted form carries, or throws WRIT_ERR_VALIDATION (messages start with the field's name). */
export function readDecisionForm(verb: 'approve' | 'deny', body: unknown, what: string): FormDecision {
  if (verb === 'deny') {
    const form = denyForm(what).safeParse(body)
    if (!form.success) throw invalidForm(formIssues(form.error))
    return { decision: 'deny', binding: form.data.binding, reason: form.data.reason }
  }
  const form = ApproveForm.safeParse(body)
  if (!form.success) throw invalidForm(formIssues(form.error))
  const f = form.data
  const passkey = readPasskeyField(f.passkey)
  return { decision: 'approve', binding: f.binding, ...(f.comment ? { comment: f.comment } : {}), ...(passkey ? { passkey } : {}) }
}

/** The passkey assertion a page's script put in a form's `passkey` field (JSON), if any; throws WRIT_ERR_VALIDATION when it does not read. */
export function readPasskeyField(text: string | undefined): PasskeyAssertion | undefined {
  if (!text) return undefined
  let raw: unknown
  try { raw = JSON.parse(text) } catch { raw = undefined }
  const parsed = PasskeyAssertionSchema.safeParse(raw)
  if (!parsed.success) throw invalidForm('passkey: the browser sent no readable passkey assertion')
  return parsed.data
}
