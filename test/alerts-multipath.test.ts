/**
 * terraform/alerts/multipath.yaml as the module deploys it: promtool accepts
 * it, every alert fires in a promtool unit test on series shaped like the
 * watchdog's and stays silent on a healthy one, and each points the on-call
 * at its section of docs/operations.md.
 */
import t from 'tap'
import { checkRuleFile } from './helpers/alert-rules.js'

t.test('multipath.yaml: promtool check and unit tests, a runbook per alert', async (t) => {
  await checkRuleFile(t, 'multipath.yaml')
})
