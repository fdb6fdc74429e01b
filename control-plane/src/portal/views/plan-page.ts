/** One plan: what runs where, the frozen target list (searchable), the rollout, results grouped, and one decision for all of it. */
export const PLAN_PAGE = `<% layout('@layout') %>
<article class="run plan">
  <p class="crumbs"><a href="/ui">Inbox</a> › plan <code><%= it.plan.id %></code></p>
  <h1><%= it.action.title %> on <%= it.plan.count %> node<%= it.plan.count === 1 ? '' : 's' %></h1>
  <p class="status status-<%= it.view.status %>" id="plan-status"><strong><%= it.statusLabel %></strong> — <%= it.view.status_reason %></p>
  <% if (it.error) { %><p class="error" role="alert"><strong><%= it.error.code %></strong>: <%= it.error.message %></p><% } %>
  <% if (it.flash) { %><p class="ok" role="status"><%= it.flash %></p><% } %>

  <section class="card">
    <h2>What will happen</h2>
    <p><code><%= it.plan.action %></code> on <strong><%= it.plan.count %></strong> node<%= it.plan.count === 1 ? '' : 's' %> · <span class="risk risk-<%= it.action.risk %>"><%= it.action.risk %> risk</span></p>
    <ul class="effects">
      <% it.action.side_effects.forEach(function (e) { %><li><%= e %></li><% }) %>
      <% if (it.action.side_effects.length === 0) { %><li>No side effects declared.</li><% } %>
    </ul>
    <dl class="facts">
      <dt>Requested by</dt><dd><%= it.plan.requester %><% if (it.plan.session_id) { %> · session <code><%= it.plan.session_id %></code><% } %></dd>
      <dt>Reason</dt><dd class="quote"><%= it.plan.reason %></dd>
      <dt>Expected outcome</dt><dd class="quote"><%= it.plan.expected || 'Not stated.' %></dd>
      <dt>Targets</dt><dd id="plan-source"><% if (it.plan.selector) { %>selector <code><%= it.plan.selector %></code><% } else { %>named: <%= it.plan.named %><% } %>, frozen when the plan was made</dd>
      <dt>Arguments</dt><dd><% if (it.plan.args.length === 0) { %>none<% } else { %><ul class="args"><% it.plan.args.forEach(function (a) { %><li><code><%= a[0] %></code> = <code><%= a[1] %></code></li><% }) %></ul><% } %><% if (it.plan.perTarget) { %><small>Differ per node (bound to each node): see the target list.</small><% } %></dd>
      <dt>Rollout</dt><dd id="plan-rollout"><%= it.plan.rollout %></dd>
      <% if (it.plan.grant) { %>
      <dt>Approval</dt><dd id="plan-grant">covered by standing grant <a href="/ui/grants#grant-<%= it.plan.grant.id %>"><code><%= it.plan.grant.id %></code></a> (approved by <%= it.plan.grant.approvedBy %>): one use for each of its <%= it.plan.grant.uses %> gated node(s); every node checks the grant itself</dd>
      <% } %>
      <% if (it.approval) { %>
      <dt>Decision window</dt><dd><% if (it.approval.open) { %><strong><%= it.approval.timeLeft %></strong> left (until <time datetime="<%= it.approval.expires_at %>"><%= it.approval.expires_at %></time>)<% } else if (it.approval.approved_at) { %>approved at <time datetime="<%= it.approval.approved_at %>"><%= it.approval.approved_at %></time><% } else { %>closed at <time datetime="<%= it.approval.expires_at %>"><%= it.approval.expires_at %></time><% } %></dd>
      <dt>Approvals</dt><dd><%= it.approval.approvals.length %> of <%= it.approval.quorum %> from <%= it.approval.groups %> (<%= it.approval.rule %>)<% it.approval.approvals.forEach(function (a) { %><br>✓ <strong><%= a.by %></strong><% if (a.passkey) { %> (passkey)<% } %> at <time datetime="<%= a.at %>"><%= a.at %></time><% if (a.comment) { %>: “<%= a.comment %>”<% } %><% }) %><% if (it.approval.denial) { %><br>✗ denied by <strong><%= it.approval.denial.by %></strong>: “<%= it.approval.denial.reason %>”<% } %></dd>
      <dt>Binding</dt><dd><code class="digest" title="<%= it.approval.binding %>"><%= it.approval.binding.slice(0, 16) %>…</code> over root <code class="digest" title="<%= it.plan.root %>"><%= it.plan.root.slice(0, 16) %>…</code>: every node checks its own place in it<% if (it.approval.passkey_required) { %> · approvals are signed with passkeys<% } %></dd>
      <% } %>
    </dl>
  </section>

  <% if (it.decision) { %>
  <section class="card decide" aria-labelledby="decide-h">
    <h2 id="decide-h">Your decision, for all <%= it.plan.count %> nodes</h2>
    <% if (it.previews && it.previews.length) { %><p class="note"><a href="#plan-preview">See what it touches</a> on <%= it.previews.length === 1 ? 'the node' : it.previews.length + ' of the nodes' %> before you decide.</p><% } %>
    <% if (it.decision.allowed) { %>
    <% if (it.passkey && !it.passkey.has) { %>
    <p class="warn" id="passkey-needed">Approving this plan needs your passkey's signature, and none of your passkeys is in the published approver registry. <a href="/ui/passkeys">Register one</a>. You can still deny.</p>
    <% } else { %>
    <form method="post" action="/ui/plans/<%= it.plan.id %>/approve" class="approve"<% if (it.passkey) { %> data-passkey-challenge="<%= it.passkey.challenge %>" data-passkey-rp="<%= it.passkey.rpId %>" data-passkey-credentials="<%= it.passkey.credentials %>"<% } %>>
      <input type="hidden" name="_csrf" value="<%= it.csrf %>">
      <input type="hidden" name="binding" value="<%= it.approval.binding %>">
      <% if (it.passkey) { %><input type="hidden" name="passkey" value=""><% } %>
      <label for="comment">Comment (optional)</label>
      <input id="comment" name="comment" type="text" maxlength="2000">
      <button type="submit" class="primary">Approve the plan<% if (it.passkey) { %> with your passkey<% } %></button>
    </form>
    <% } %>
    <form method="post" action="/ui/plans/<%= it.plan.id %>/deny" class="deny">
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

  <% if (it.previews && it.previews.length) { %>
  <section class="card" aria-labelledby="preview-h" id="plan-preview">
    <h2 id="preview-h">Impact preview<% if (it.previews.length < it.gatedCount) { %>: <%= it.previews.length %> of the <%= it.gatedCount %> gated nodes, spread over the plan<% } %></h2>
    <% it.previews.forEach(function (e) { %>
    <details class="evidence"<% if (e === it.previews[0]) { %> open<% } %>>
      <summary><strong><%= e.node %></strong> (target <%= e.position %>)</summary>
      <% if (e.view.unavailable) { %><p class="warn">Preview unavailable: <%= e.view.unavailable %></p><% } %>
      <% e.view.items.forEach(function (p) { %>
        <h3><%= p.title %> <small>(<a href="/ui/runs/<%= p.run_id %>">run <%= p.run_id %></a>)</small></h3>
        <% if (p.as_of) { %><p class="note">As of <%~ it.fmt.time(p.as_of) %>.</p><% } %>
        <% if (p.note) { %><p class="warn"><%= p.note %></p><% } %>
        <% if (p.facts.length) { %><dl class="facts"><% p.facts.forEach(function (f) { %><dt><%= f[0] %></dt><dd><%= f[1] %></dd><% }) %></dl><% } %>
        <% if (p.rows && p.rows.length) { %>
        <div class="table"><table><caption class="sr-only"><%= p.title %> on <%= e.node %></caption>
          <thead><tr><% p.columns.forEach(function (c) { %><th scope="col"><%= c %></th><% }) %></tr></thead>
          <tbody><% p.rows.forEach(function (r) { %><tr><% r.forEach(function (c, i) { %><td data-label="<%= p.columns[i] %>"><%= c %></td><% }) %></tr><% }) %></tbody>
        </table></div>
        <% } %>
      <% }) %>
    </details>
    <% }) %>
  </section>
  <% } %>

  <section class="card" aria-labelledby="results-h">
    <h2 id="results-h">Results, grouped by identical output</h2>
    <p id="plan-summary"><%= it.counts %></p>
    <% if (it.view.groups.length === 0) { %><p>No results yet.</p><% } %>
    <% it.view.groups.forEach(function (g) { %>
    <details class="evidence" open>
      <summary><strong><%= g.count %> node<%= g.count === 1 ? '' : 's' %></strong>: <%= g.status %><% if (g.status !== 'succeeded') { %> (exit <%= g.exit_code === null ? 'none' : g.exit_code %>)<% } %></summary>
      <p class="nodes"><%= g.nodes.join(', ') %><% if (g.more_nodes) { %> and <%= g.more_nodes %> more<% } %></p>
      <% if (g.output) { %><pre tabindex="0"><%= g.output %></pre><% } else { %><p>No output.</p><% } %>
    </details>
    <% }) %>
  </section>

  <section class="card" aria-labelledby="targets-h">
    <h2 id="targets-h">Targets (<%= it.plan.count %>)</h2>
    <form method="get" action="/ui/plans/<%= it.plan.id %>" class="search" role="search">
      <label for="q">Find a node</label>
      <input id="q" name="q" type="search" value="<%= it.q %>" maxlength="256">
      <button type="submit">Search</button>
    </form>
    <div class="table"><table><caption class="sr-only">Targets of the plan</caption>
      <thead><tr><th scope="col">#</th><th scope="col">Node</th><th scope="col">Status</th><th scope="col">Run</th></tr></thead>
      <tbody><% it.targets.forEach(function (x) { %><tr id="t-<%= x.position %>"><td><%= x.position %></td><td><%= x.node %></td><td><%= x.status %></td><td><code><%= x.run_id %></code></td></tr><% }) %></tbody>
    </table></div>
    <% if (it.moreTargets) { %><p class="note"><%= it.moreTargets %> more match; search to narrow the list.</p><% } %>
    <% if (it.plan.excluded.length) { %>
    <h3>Not in the plan (<%= it.plan.excluded.length %>)</h3>
    <ul class="excluded"><% it.plan.excluded.slice(0, 200).forEach(function (e) { %><li><strong><%= e.node %></strong>: <%= e.reason %></li><% }) %></ul>
    <% } %>
  </section>
  <p><a href="/ui/audit?run_id=<%= it.plan.id %>">This plan in the audit trail</a></p>
</article>
`
