/** Policy rules match with the one glob both daemons use (runners match approver-registry rules with it). */
export { globMatch, anyGlob, globToRegExp } from '@writ/packs'
