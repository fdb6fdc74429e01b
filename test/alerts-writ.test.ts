/**
 * terraform/alerts/writ.yaml, the alerts on writ's own health, as the module
 * deploys it: rendered with the module's default thresholds (the same bytes
 * Terraform's templatefile() makes, where terraform is on PATH), accepted by
 * promtool, every alert firing in a promtool unit test on series shaped like
 * the real metric and silent on a healthy one, each with a runbook section.
 * The thresholds are module variables, described, typed and validated.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RefusalCodeSchema } from '@writ/packs/protocol'
import {
  ALERTS_DIR, TF_DIR, checkRuleFile, moduleTemplateValues, moduleVariables, readRules, renderModuleRules, renderTemplate, renderWithTerraform,
} from './helpers/alert-rules.js'

t.test('writ.yaml: promtool check and unit tests, a runbook per alert', async (t) => {
  await checkRuleFile(t, 'writ.yaml')
})

t.test('the issue\'s alerts are all there, each reading the metric it is about', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-rules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rules = new Map(readRules((await renderModuleRules(dir)).writ).map((r) => [r.alert, r]))
  const reads: Record<string, RegExp> = {
    WritRunnerHeartbeatMissing: /writ_node_last_heartbeat_timestamp_seconds/,
    WritRunnersQuietFleetwide: /count\(.*writ_node_last_heartbeat_timestamp_seconds.*\/ count\(/,
    WritControlPlaneInstancesMissing: /sum\(writ_control_plane_ready\) < 2 /,
    WritControlPlaneDown: /writ_control_plane_ready/,
    WritAuditCheckpointStale: /writ_audit_covered_timestamp_seconds/,
    WritAuditVerifyFailed: /writ_audit_verify_success/,
    WritAuditVerifyStale: /writ_audit_verify_last_run_timestamp_seconds/,
    WritApprovalsExpired: /writ_approval_decisions_total\{outcome="expired"\}/,
    WritApprovalWaitHigh: /histogram_quantile\(0\.95, .*writ_approval_wait_seconds_bucket/,
    WritSlackNoticesDropped: /writ_slack_notices_dropped_total/,
    WritSlackPostsFailing: /writ_slack_post_failures_total/,
    WritRunnerRefusalsSuspicious: /writ_runner_refusals_total\{code=~"[^"]*bad_signature[^"]*unknown_key[^"]*replayed[^"]*passkey_required/,
    WritJetStreamStreamNearLimit: /writ_jetstream_stream_bytes.*writ_jetstream_stream_max_bytes/,
    WritJetStreamAccountNearLimit: /writ_jetstream_account_storage_bytes.*writ_jetstream_account_max_storage_bytes/,
  }
  for (const [alert, re] of Object.entries(reads)) t.match(rules.get(alert)?.expr.replace(/\s+/g, ' '), re, `${alert} reads what it is about`)
})

t.test('thresholds are module variables: described, typed, validated, each one used by the rules', async (t) => {
  const vars = await moduleVariables()
  const alertVars = Object.keys(vars).filter((n) => n.startsWith('alert_'))
  t.ok(alertVars.length >= 10, `alert_* variables: ${alertVars.join(', ')}`)
  const readme = readFileSync(join(TF_DIR, 'README.md'), 'utf8')
  for (const name of alertVars) {
    const v = vars[name]
    t.ok(typeof v.description === 'string' && v.description.length > 30, `${name}: description`)
    t.ok(v.type, `${name}: type`)
    t.ok(v.validation, `${name}: validation`)
    t.match(readme, name, `${name}: terraform/README.md documents it`)
  }
  const values = await moduleTemplateValues('alert_thresholds')
  t.equal(values.control_plane_count, String(vars.control_plane_count.default), 'fewer instances than configured reads control_plane_count itself')
  // renderTemplate refuses a placeholder the module does not pass and a value the template never uses.
  t.doesNotThrow(() => renderTemplate(readFileSync(join(ALERTS_DIR, 'writ.yaml'), 'utf8'), values), 'the template and the module agree on every name')
  t.throws(() => renderTemplate(readFileSync(join(ALERTS_DIR, 'writ.yaml'), 'utf8'), { ...values, unused_threshold: '1' }), /never uses/, 'a value the template drops is caught')

  const codes = vars.alert_runner_refusal_codes
  const allowed = [...(/contains\(\[([^\]]*)\]/.exec(codes.validation[0].condition)?.[1] ?? '').matchAll(/"([a-z_]+)"/g)].map((m) => m[1])
  t.same([...allowed].sort(), [...RefusalCodeSchema.options].sort(), 'alert_runner_refusal_codes accepts exactly the refusal codes runners report')
  for (const c of codes.default as string[]) t.ok(RefusalCodeSchema.options.includes(c as never), `default code ${c} is one runners report`)
  t.notOk((codes.default as string[]).includes('expired'), 'expired (clock skew, slow NATS) does not page by default')
})

t.test('the bytes promtool tested are the bytes Terraform renders', async (t) => {
  const values = await moduleTemplateValues('alert_thresholds')
  const template = join(ALERTS_DIR, 'writ.yaml')
  let terraform: string | undefined
  try { terraform = renderWithTerraform(template, values) } catch (err) { t.fail(`terraform could not render ${template}: ${(err as Error).message}`); return }
  if (terraform === undefined) {
    t.skip('terraform is not on PATH: the rendering above is the tests\' own (the same ${name} substitution)', () => {})
    return
  }
  t.equal(terraform, renderTemplate(readFileSync(template, 'utf8'), values), 'templatefile() gives the same text')
})
