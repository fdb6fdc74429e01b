/** One run, with everything an approver needs on one page, and the decision forms. */
export const RUN_PAGE = `<% layout('@layout') %>
<article class="run">
  <p class="crumbs"><a href="/ui">Inbox</a> › run <code><%= it.run.id %></code></p>
  <h1><%= it.action.title %></h1>
  <p class="status status-<%= it.run.status %>" id="run-status"><strong><%= it.run.statusLabel %></strong> — <%= it.run.status_reason %></p>
  <% if (it.error) { %><p class="error" role="alert"><strong><%= it.error.code %></strong>: <%= it.error.message %></p><% } %>
  <% if (it.flash) { %><p class="ok" role="status"><%= it.flash %></p><% } %>

  <section class="card">
    <h2>What will happen</h2>
    <p><code><%= it.run.action %></code> on node <strong><%= it.run.node_name %></strong> · <span class="risk risk-<%= it.action.risk %>"><%= it.action.risk %> risk</span></p>
    <% if (it.action.description) { %><p><%= it.action.description %></p><% } %>
    <ul class="effects">
      <% it.action.side_effects.forEach(function (e) { %><li><%= e %></li><% }) %>
      <% if (it.action.side_effects.length === 0) { %><li>No side effects declared.</li><% } %>
    </ul>
    <dl class="facts">
      <dt>Requested by</dt><dd><%= it.run.requester %><% if (it.run.session_id) { %> · session <code><%= it.run.session_id %></code><% } %></dd>
      <dt>Reason</dt><dd class="quote"><%= it.run.reason %></dd>
      <dt>Expected outcome</dt><dd class="quote"><%= it.run.expected || 'Not stated.' %></dd>
      <dt>Arguments</dt><dd><% if (it.run.args.length === 0) { %>none<% } else { %><ul class="args"><% it.run.args.forEach(function (a) { %><li><code><%= a[0] %></code> = <code><%= a[1] %></code></li><% }) %></ul><% } %></dd>
      <dt>Options</dt><dd id="run-options"><% if (it.options.given.length === 0) { %>none<% } else { %><ul class="args"><% it.options.given.forEach(function (o) { %><li><code><%= o[0] %></code> = <code><%= o[1] %></code></li><% }) %></ul><% } %><% if (it.options.declared) { %> <small>(the action declares <%= it.options.declared %>)</small><% } %></dd>
      <% if (it.approval) { %>
      <dt>Decision window</dt><dd><% if (it.approval.open) { %><strong><%= it.approval.timeLeft %></strong> left (until <time datetime="<%= it.approval.expires_at %>"><%= it.approval.expires_at %></time>)<% } else { %>closed at <time datetime="<%= it.approval.expires_at %>"><%= it.approval.expires_at %></time><% } %></dd>
      <dt>Approvals</dt><dd><%= it.approval.approvals.length %> of <%= it.approval.quorum %> from <%= it.approval.groups %><% it.approval.approvals.forEach(function (a) { %><br>✓ <strong><%= a.by %></strong><% if (a.passkey) { %> (passkey)<% } %> at <time datetime="<%= a.at %>"><%= a.at %></time><% if (a.comment) { %>: “<%= a.comment %>”<% } %><% }) %><% if (it.approval.denial) { %><br>✗ denied by <strong><%= it.approval.denial.by %></strong> at <time datetime="<%= it.approval.denial.at %>"><%= it.approval.denial.at %></time>: “<%= it.approval.denial.reason %>”<% } %></dd>
      <dt>Binding</dt><dd><code class="digest" title="<%= it.approval.binding %>"><%= it.approval.binding.slice(0, 16) %>…</code><% if (it.approval.passkey_required) { %> · approvals are signed with passkeys<% } %></dd>
      <% } %>
    </dl>
  </section>

  <% if (it.preview) { %>
  <section class="card" aria-labelledby="preview-h">
    <h2 id="preview-h">Impact preview</h2>
    <% if (it.preview.unavailable) { %><p class="warn">Preview unavailable: <%= it.preview.unavailable %></p><% } %>
    <% it.preview.items.forEach(function (p) { %>
      <h3><%= p.title %> <small>(<a href="/ui/runs/<%= p.run_id %>">run <%= p.run_id %></a>)</small></h3>
      <% if (p.note) { %><p class="warn"><%= p.note %></p><% } %>
      <% if (p.facts.length) { %><dl class="facts"><% p.facts.forEach(function (f) { %><dt><%= f[0] %></dt><dd><%= f[1] %></dd><% }) %></dl><% } %>
      <% if (p.rows && p.rows.length) { %>
      <div class="table"><table><caption class="sr-only"><%= p.title %></caption>
        <thead><tr><% p.columns.forEach(function (c) { %><th scope="col"><%= c %></th><% }) %></tr></thead>
        <tbody><% p.rows.forEach(function (r) { %><tr><% r.forEach(function (c) { %><td><%= c %></td><% }) %></tr><% }) %></tbody>
      </table></div>
      <% } %>
    <% }) %>
  </section>
  <% } %>

  <section class="card" aria-labelledby="evidence-h">
    <h2 id="evidence-h">Evidence trail</h2>
    <% if (it.evidence.length === 0) { %><p>No earlier runs in this session and none cited.</p><% } %>
    <% it.evidence.forEach(function (e) { %>
    <details class="evidence"<% if (e.cited) { %> open<% } %>>
      <summary><% if (e.cited) { %><span class="tag">cited</span> <% } %><code><%= e.action %></code> on <%= e.node %> — <%= e.status %> <small>(<a href="/ui/runs/<%= e.id %>"><%= e.id %></a>, <time datetime="<%= e.at %>"><%= e.at %></time>)</small></summary>
      <p class="quote"><%= e.reason %></p>
      <% if (e.output) { %><pre tabindex="0"><%= e.output %></pre><% } else { %><p>No output recorded.</p><% } %>
      <% if (e.truncated) { %><p class="note"><%= e.truncated %></p><% } %>
    </details>
    <% }) %>
  </section>

  <% if (it.decision) { %>
  <section class="card decide" aria-labelledby="decide-h">
    <h2 id="decide-h">Your decision</h2>
    <% if (it.decision.allowed) { %>
    <% if (it.passkey && !it.passkey.has) { %>
    <p class="warn" id="passkey-needed">Approving this run needs your passkey's signature (runners check it), and none of your passkeys is in the published approver registry. <a href="/ui/passkeys">Register one</a>; it counts once an administrator publishes it. You can still deny.</p>
    <% } else { %>
    <form method="post" action="/ui/runs/<%= it.run.id %>/approve" class="approve"<% if (it.passkey) { %> data-passkey-challenge="<%= it.passkey.challenge %>" data-passkey-rp="<%= it.passkey.rpId %>" data-passkey-credentials="<%= it.passkey.credentials %>"<% } %>>
      <input type="hidden" name="_csrf" value="<%= it.csrf %>">
      <input type="hidden" name="binding" value="<%= it.approval.binding %>">
      <% if (it.passkey) { %><input type="hidden" name="passkey" value=""><% } %>
      <label for="comment">Comment (optional)</label>
      <input id="comment" name="comment" type="text" maxlength="2000">
      <button type="submit" class="primary">Approve<% if (it.passkey) { %> with your passkey<% } %></button>
      <% if (it.passkey) { %>
      <p class="note" data-passkey-status role="status" aria-live="polite">Runners accept this approval only with a passkey signature over this run (<%= it.passkey.quorum %> from <%= it.passkey.groups %>).</p>
      <noscript><p class="warn">Signing with a passkey needs JavaScript.</p></noscript>
      <% } %>
    </form>
    <% } %>
    <form method="post" action="/ui/runs/<%= it.run.id %>/deny" class="deny">
      <input type="hidden" name="_csrf" value="<%= it.csrf %>">
      <input type="hidden" name="binding" value="<%= it.approval.binding %>">
      <label for="reason">Reason for denying (the agent is told)</label>
      <input id="reason" name="reason" type="text" maxlength="2000" required>
      <button type="submit" class="danger">Deny</button>
    </form>
    <% } else { %>
    <p><%= it.decision.whyNot %></p>
    <% } %>
  </section>
  <% } %>

  <% if (it.run.result) { %>
  <section class="card" aria-labelledby="result-h">
    <h2 id="result-h">Result</h2>
    <p>Exit code <%= it.run.result.exit_code === null ? 'none' : it.run.result.exit_code %> · <%= it.run.result.duration_ms %> ms</p>
    <% if (it.run.result.stdout) { %><pre tabindex="0"><%= it.run.result.stdout %></pre><% } %>
    <% if (it.run.result.stderr) { %><pre tabindex="0" class="stderr"><%= it.run.result.stderr %></pre><% } %>
  </section>
  <% } %>
  <p><a href="/ui/audit?run_id=<%= it.run.id %>">This run in the audit trail</a></p>
</article>
`
