/**
 * MCP authorization's configuration: a wrong `oauth` setting or an agent
 * principal that can sign in no way stops the boot, naming the setting.
 */
import t from 'tap'
import { parseConfig } from '@writ/control-plane'

const base = { packs: { dirs: ['/packs'] }, signing: { key_file: '/k.pem' } }
const hash = 'a'.repeat(64)

t.test('oauth settings and agents connected through OAuth', async (t) => {
  const ok = parseConfig({ ...base, oauth: {}, principals: [{ id: 'connector', kind: 'agent', oauth: { groups: ['oncall'] } }] })
  t.match(ok.oauth, { access_token_ttl: '1h', grant_ttl: '720h', dynamic_registration: false, client_metadata_documents: { allowed_hosts: [], max_bytes: 5120 } }, 'defaults: short tokens, no registration, no documents fetched')
  t.same(ok.principals[0]?.oauth, { people: [], groups: ['oncall'] }, 'an agent may have an oauth rule and no token')
  const cases: Array<[unknown, RegExp]> = [
    [{ ...base, oauth: { access_token_ttl: '2h' } }, /oauth\.access_token_ttl: between 1s and 1h/],
    [{ ...base, oauth: { client_metadata_documents: { allowed_hosts: ['https://claude.ai'] } } }, /oauth\.client_metadata_documents\.allowed_hosts\.0: a lower-case host name/],
    [{ ...base, oauth: { registration: true } }, /oauth: Unrecognized key/],
    [{ ...base, principals: [{ id: 'nobody', kind: 'agent' }] }, /principals\.0: an agent signs in with a token \(token_sha256\) or through MCP authorization \(oauth\)/],
    [{ ...base, principals: [{ id: 'ops', kind: 'operator', token_sha256: hash, oauth: { people: ['ops'] } }] }, /principals\.0\.oauth: only an agent is connected through OAuth/],
    [{ ...base, principals: [{ id: 'a', kind: 'agent', oauth: { people: ['bad name!'] } }] }, /principals\.0\.oauth\.people\.0/],
  ]
  for (const [input, re] of cases) t.throws(() => parseConfig(input), { name: 'ConfigError', message: re }, String(re))
})
