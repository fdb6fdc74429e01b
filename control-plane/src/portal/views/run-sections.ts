/** The run page's sections below its first screen, as partials. */

/** An output: JSON pretty-printed in a fold, logs from their end, kernel records with their time, a download link. */
export const OUTPUT = `<% const o = it.o %>
<% if (o.empty) { %><p class="note">No output recorded.</p><% } else { %>
<% if (o.kind === 'kernel') { %>
<ol class="kernel" tabindex="0" aria-label="Kernel records, newest last"><% o.lines.forEach(function (l) { %><li class="sev-<%= l.severity || 'info' %>"><% if (l.at) { %><%~ it.fmt.time(l.at) %><% } else if (l.boot) { %><span class="boot"><%= l.boot %></span><% } %> <span class="msg"><%= l.text %></span></li><% }) %></ol>
<% } else if (o.kind === 'json') { %>
<details class="json" open><summary>JSON</summary><pre tabindex="0"><%= o.text %></pre></details>
<% } else { %>
<pre tabindex="0"<% if (o.kind === 'log') { %> class="log"<% } %>><%= o.text %></pre>
<% } %>
<p class="note"><%= o.note %><% if (o.note) { %> <% } %><a href="<%= o.download %>" download>Download the whole output</a></p>
<% } %>
`

/** A decided run, as history: who decided and when, then the result. */
export const HAPPENED = `<section class="card happened" aria-labelledby="happened-h">
  <h2 id="happened-h">What happened</h2>
  <ul class="decisions">
    <% if (it.approval) { %>
      <% it.approval.approvals.forEach(function (a) { %><li>✓ Approved by <strong><%= a.by %></strong><% if (a.passkey) { %> (passkey)<% } %>, <%~ it.fmt.time(a.at) %><% if (a.comment) { %>: “<%= a.comment %>”<% } %></li><% }) %>
      <% if (it.approval.denial) { %><li>✗ Denied by <strong><%= it.approval.denial.by %></strong>, <%~ it.fmt.time(it.approval.denial.at) %>: “<%= it.approval.denial.reason %>”</li><% } %>
      <% if (it.run.status === 'expired') { %><li>Nobody decided before <%~ it.fmt.time(it.approval.expires_at) %>.</li><% } %>
    <% } else { %>
      <li>No approval needed: <%= it.run.policy.rule ? 'policy rule “' + it.run.policy.rule + '” allowed it' : 'policy allowed it' %>.</li>
    <% } %>
    <% if (it.outcome.finished_at) { %><li>Finished <%~ it.fmt.time(it.outcome.finished_at) %>.</li><% } %>
  </ul>
  <% if (it.outcome.result) { %>
  <h3>Result</h3>
  <p><% if (it.outcome.result.exit_code !== 'none') { %>Exit code <%= it.outcome.result.exit_code %> · <% } %>took <%= it.outcome.result.duration %></p>
  <%~ include('@output', { o: it.outcome.result.output, fmt: it.fmt }) %>
  <% if (it.outcome.result.parse_error) { %><p class="warn">The output did not parse: <%= it.outcome.result.parse_error %></p><% } %>
  <% if (it.outcome.result.stderr) { %><h3>Standard error</h3><pre tabindex="0" class="stderr"><%= it.outcome.result.stderr %></pre><% } %>
  <% } %>
</section>
`

export const PREVIEW = `<section class="card" aria-labelledby="preview-h">
  <h2 id="preview-h">Impact preview</h2>
  <% if (it.preview.unavailable) { %><p class="warn">Preview unavailable: <%= it.preview.unavailable %></p><% } %>
  <% it.preview.items.forEach(function (p) { %>
    <h3><%= p.title %> <small>(<a href="/ui/runs/<%= p.run_id %>">run <%= p.run_id %></a>)</small></h3>
    <% if (p.as_of) { %><p class="note">As of <%~ it.fmt.time(p.as_of) %><% if (it.history) { %>, read before the action ran<% } %>.</p><% } %>
    <% if (p.note) { %><p class="warn"><%= p.note %></p><% } %>
    <% if (p.facts.length) { %><dl class="facts"><% p.facts.forEach(function (f) { %><dt><%= f[0] %></dt><dd><%= f[1] %></dd><% }) %></dl><% } %>
    <% if (p.rows && p.rows.length) { %>
    <div class="table"><table><caption class="sr-only"><%= p.title %></caption>
      <thead><tr><% p.columns.forEach(function (c) { %><th scope="col"><%= c %></th><% }) %></tr></thead>
      <tbody><% p.rows.forEach(function (r) { %><tr><% r.forEach(function (c, i) { %><td data-label="<%= p.columns[i] %>"><%= c %></td><% }) %></tr><% }) %></tbody>
    </table></div>
    <% } %>
  <% }) %>
</section>
`

export const EVIDENCE = `<section class="card" aria-labelledby="evidence-h">
  <h2 id="evidence-h">Evidence trail</h2>
  <% if (it.evidence.length === 0) { %><p>No earlier runs in this session and none cited.</p><% } else { %><p class="note">Runs the requester cites, then its earlier runs in this session.</p><% } %>
  <% it.evidence.forEach(function (e) { %>
  <details class="evidence"<% if (e.cited) { %> open<% } %>>
    <summary><% if (e.cited) { %><span class="tag">cited</span> <% } %><%= e.summary %> — <span class="tone-<%= e.status_class %>"><%= e.status %></span> <small>(<code><%= e.action %></code>, <a href="/ui/runs/<%= e.id %>"><%= e.id %></a>, <%~ it.fmt.time(e.at) %>)</small></summary>
    <p class="quote"><%= e.reason %></p>
    <%~ include('@output', { o: e.output, fmt: it.fmt }) %>
  </details>
  <% }) %>
</section>
`

/** What a person rarely needs to decide, folded: the action's full description, the declared call, options, binding, policy. */
export const DETAILS = `<details class="card more">
  <summary>Details: the action, its call, options and binding</summary>
  <dl class="facts">
    <dt>Action</dt><dd><%= it.action.title %> <code><%= it.action.id %></code></dd>
    <% if (it.action.description) { %><dt>Description</dt><dd><%= it.action.description %></dd><% } %>
    <% if (it.action.call) { %><dt>Call</dt><dd><code><%= it.action.call %></code></dd><% } %>
    <dt>Options</dt><dd id="run-options"><% if (it.options.given.length === 0) { %>none<% } else { %><ul class="args"><% it.options.given.forEach(function (o) { %><li><code><%= o[0] %></code> = <code><%= o[1] %></code></li><% }) %></ul><% } %><% if (it.options.declared) { %> <small>(the action declares <%= it.options.declared %>)</small><% } %></dd>
    <% if (it.run.session_id) { %><dt>Session</dt><dd><code><%= it.run.session_id %></code></dd><% } %>
    <dt>Policy</dt><dd><%= it.run.policy.decision %><% if (it.run.policy.rule) { %> (rule “<%= it.run.policy.rule %>”)<% } %></dd>
    <% if (it.approval) { %>
    <dt>Decision window</dt><dd>until <%~ it.fmt.time(it.approval.expires_at) %></dd>
    <dt>Binding</dt><dd><code class="digest" title="<%= it.approval.binding %>"><%= it.approval.binding.slice(0, 16) %>…</code><% if (it.approval.passkey_required) { %> · approvals are signed with passkeys<% } %></dd>
    <% } %>
    <dt>Pack</dt><dd><code><%= it.run.pack %></code> <code class="digest" title="<%= it.run.pack_digest %>"><%= it.run.pack_digest.slice(0, 12) %>…</code></dd>
  </dl>
</details>
`
