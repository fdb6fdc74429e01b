export {
  RiskSchema, RISK_ORDER, ArgTypeSchema, ArgValidationSchema, ArgSpecSchema, TEMPLATE_RE, TEMPLATE_FILTERS,
  ExecExecutionSchema, ScriptExecutionSchema, HttpTargetSchema, HttpExecutionSchema, ListExecutionSchema,
  ParserSchema, OutputSchema, ActionFileSchema, PackManifestSchema, compilePackRegex, RUNNER_DIRS,
  ArgConditionSchema, SideEffectSchema, SummarySchema, SUMMARY_FILTERS,
} from './pack-schema.js'
export type { Risk, ArgType, ArgValidation, ArgSpec, HttpTarget, ParserName, ActionFile, ActionKind, PackManifest, RunnerDirs, RunnerDirName, ArgCondition, SideEffect, Summary } from './pack-schema.js'
export { renderSummary, applicableSideEffects, describeSideEffects, conditionHolds } from './action-summary.js'
export type { SummaryContext } from './action-summary.js'
export { parseDuration } from './duration.js'
export { declaresNoSideEffects } from './side-effects.js'
export { canonicalJson } from './canonical-json.js'
export { globMatch, anyGlob, globToRegExp } from './glob-match.js'
export { GENESIS_HASH, chainHash, sealLink, checkLink } from './hash-chain.js'
export type { ChainLink, LinkCheck } from './hash-chain.js'
export { JournalEntrySchema, readJournal } from './run-journal-format.js'
export type { JournalEntry, JournalWitness, JournalRead } from './run-journal-format.js'
export { validateArgs, REDACTED } from './arg-validation.js'
export { findUnsafeCharacter, UNSAFE_CHARACTER } from './unsafe-characters.js'
export type { UnsafeCharacter } from './unsafe-characters.js'
export type { ArgValue, ValidatedArgs, ArgError, ArgErrorCode, ArgResult } from './arg-validation.js'
export { prepareInvocation, resolveListRoot, templateNames } from './invocation.js'
export type { Invocation, InvocationResult } from './invocation.js'
export { loadPacks } from './pack-loader.js'
export { shellReasons, programNames, isCodeEnvName } from './shell-detection.js'
export type { LoadedAction, LoadedPack, LoadError, LoadResult } from './pack-loader.js'
export { PackCatalog } from './pack-catalog.js'
export type { CatalogLookup } from './pack-catalog.js'
