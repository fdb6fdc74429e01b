/** The one error body every route answers with (`WRIT_ERR_*` code + message). */
import { z } from 'zod'

export const ErrorBodySchema = z.object({
  error: z.object({ code: z.string().regex(/^WRIT_ERR_[A-Z_]+$/), message: z.string() }).catchall(z.unknown()),
})
