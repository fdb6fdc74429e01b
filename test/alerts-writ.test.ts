/**
 * terraform/alerts/writ.yaml, the control plane's alert rules: valid for
 * Prometheus (promtool check rules), each rule fires on what it is meant to
 * (promtool test rules, with series shaped like the control plane's), and
 * every metric a rule reads is one the control plane exports.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { startCpSuite } from './helpers/cp-fixtures.js'
import { REPO_ROOT } from './helpers/runner-harness.js'

const RULES = join(REPO_ROOT, 'terraform', 'alerts', 'writ.yaml')

interface Rule { alert: string, expr: string, for: string, labels: Record<string, string>, annotations: Record<string, string> }

t.test('promtool accepts the rule file; one group "writ", every rule with a severity, summary and description', async (t) => {
  const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' })
  t.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`)
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string, rules: Rule[] }> }
  t.same(doc.groups.map((g) => g.name), ['writ'])
  for (const r of doc.groups.flatMap((g) => g.rules)) {
    t.match(r.labels.severity, /^(page|warning)$/, `${r.alert}: severity`)
    t.type(r.annotations.summary, 'string', `${r.alert}: summary`)
    t.type(r.annotations.description, 'string', `${r.alert}: description`)
  }
})

t.test('WritSlackNoticesDropped fires when any notice is dropped, per reason, and not before', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-alerts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'writ.test.yaml')
  writeFileSync(file, JSON.stringify({
    rule_files: [RULES],
    evaluation_interval: '1m',
    tests: [{
      interval: '1m',
      input_series: [
        // Two instances; one drops a notice Slack refused at minute 5, the other never drops anything.
        { series: 'writ_slack_notices_dropped_total{instance="cp-1",job="writ-control-plane",reason="refused"}', values: '0x4 1x30' },
        { series: 'writ_slack_notices_dropped_total{instance="cp-2",job="writ-control-plane",reason="max_attempts"}', values: '0x35' },
      ],
      alert_rule_test: [
        { eval_time: '4m', alertname: 'WritSlackNoticesDropped', exp_alerts: [] },
        {
          eval_time: '8m', alertname: 'WritSlackNoticesDropped',
          exp_alerts: [{
            exp_labels: { severity: 'warning', reason: 'refused' },
            exp_annotations: {
              summary: 'Slack approval notices are being dropped (refused)',
              description: 'Notices about runs waiting for approval, or about their outcome, were not posted to Slack in the last 15 minutes (reason refused; control-plane/README.md "Slack notices" says what each reason means). Runs may be waiting unseen: check the portal inbox (/ui), the control plane\'s log and the webhook (notify.slack).',
            },
          }],
        },
        { eval_time: '30m', alertname: 'WritSlackNoticesDropped', exp_alerts: [] },
      ],
    }],
  }))
  const res = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8' })
  t.equal(res.status, 0, `promtool test rules: ${res.stdout}${res.stderr}`)
})

t.test('every metric the rules read is exported by the control plane', async (t) => {
  const { app } = await startCpSuite(t)
  const exposition = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }
  for (const r of doc.groups.flatMap((g) => g.rules)) {
    for (const [name] of r.expr.matchAll(/\bwrit_[a-z_]+/g)) t.match(exposition, new RegExp(`^# TYPE ${name} `, 'm'), `${r.alert}: ${name} is on /metrics`)
  }
})
