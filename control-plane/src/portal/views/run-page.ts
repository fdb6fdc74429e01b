/**
 * One run. The first screen holds what a decision needs — the concrete
 * change, risk, node, requester, reason, time left — and the decision bar,
 * which stays at the bottom of the screen while the rest (what it changes,
 * the impact preview, the evidence, the details) reads below. A run no longer
 * waiting reads as history: what happened comes first.
 */
export const RUN_PAGE = `<% layout('@layout') %>
<article class="run<% if (it.decision) { %> with-bar<% } %>">
  <p class="crumbs"><a href="/ui">Inbox</a> › run <code><%= it.run.id %></code></p>
  <h1 id="run-summary"><%= it.summary %></h1>
  <p class="status tone-<%= it.run.tone %>" id="run-status"><strong><%= it.run.statusLabel %></strong><% if (it.history) { %> — <%= it.run.status_reason %><% } %></p>
  <% if (it.error && !it.error.field) { %><p class="error" role="alert"><strong><%= it.error.code %></strong>: <%= it.error.message %></p><% } %>
  <% if (it.flash) { %><p class="ok" role="status"><%= it.flash %></p><% } %>
  <dl class="glance">
    <dt>Risk</dt><dd><span class="risk risk-<%= it.action.risk %>"><%= it.action.risk %> risk</span> · <%= it.action.title %> <code><%= it.action.id %></code></dd>
    <dt>Node</dt><dd><strong><%= it.run.node_name %></strong></dd>
    <dt>Requested by</dt><dd><%= it.run.requester %>, <%~ it.fmt.time(it.run.created_at) %></dd>
    <dt>Reason</dt><dd class="quote"><%= it.run.reason %></dd>
    <% if (it.approval && !it.history) { %>
    <dt>Time left</dt><dd><% if (it.approval.open) { %><strong class="countdown<% if (it.approval.urgent) { %> urgent<% } %>" data-countdown="<%= it.approval.expires_at %>" title="<%= it.approval.expires_at %>"><%= it.approval.timeLeft %> left</strong><% } else { %><strong class="countdown urgent">the decision window has closed</strong><% } %> · <%= it.approval.approvals.length %> of <%= it.approval.quorum %> approvals from <%= it.approval.groups %><% it.approval.approvals.forEach(function (a) { %><br>✓ <strong><%= a.by %></strong><% if (a.passkey) { %> (passkey)<% } %>, <%~ it.fmt.time(a.at) %><% if (a.comment) { %>: “<%= a.comment %>”<% } %><% }) %></dd>
    <% } %>
  </dl>
  <% if (it.nearby.length) { %>
  <div class="warn-box" role="note"><strong>Another request waits for this node:</strong><ul><% it.nearby.forEach(function (o) { %><li><a href="/ui/runs/<%= o.id %>"><%= o.summary %></a> — by <%= o.requester %>, <%~ it.fmt.time(o.created_at) %></li><% }) %></ul></div>
  <% } %>

  <% if (it.history) { %><%~ include('@run-happened', it) %><% } %>

  <section class="card" aria-labelledby="change-h">
    <h2 id="change-h"><%= it.history ? 'What it changes' : 'What will happen' %></h2>
    <ul class="effects">
      <% it.action.side_effects.forEach(function (e) { %><li><%= e %></li><% }) %>
      <% if (it.action.side_effects.length === 0) { %><li>No side effects declared.</li><% } %>
    </ul>
    <dl class="facts">
      <dt>Expected outcome</dt><dd class="quote"><%= it.run.expected || 'Not stated.' %></dd>
      <dt>Arguments</dt><dd><% if (it.run.args.length === 0) { %>none<% } else { %><ul class="args"><% it.run.args.forEach(function (a) { %><li><code><%= a[0] %></code> = <code><%= a[1] %></code></li><% }) %></ul><% } %></dd>
      <% if (it.approvedState) { %><dt>Approved state</dt><dd id="approved-state">approved state: index <%= it.approvedState.index %> (<%= it.approvedState.what %>, as the impact preview read it); the runner re-reads it right before acting and refuses if it has changed</dd><% } %>
    </dl>
  </section>

  <% if (it.preview) { %><%~ include('@run-preview', it) %><% } %>
  <%~ include('@run-evidence', it) %>
  <%~ include('@run-details', it) %>
  <p><a href="/ui/audit?run_id=<%= it.run.id %>">This run in the audit trail</a></p>

  <% if (it.decision) { %>
  <section class="decide bar" aria-labelledby="decide-h">
    <h2 id="decide-h" class="sr-only">Your decision</h2>
    <% if (it.decision.allowed) { %>
    <% if (it.passkey && !it.passkey.has) { %>
    <p class="warn" id="passkey-needed">Approving this run needs your passkey's signature (runners check it), and none of your passkeys is in the published approver registry. <a href="/ui/passkeys">Register one</a>; it counts once an administrator publishes it. You can still deny.</p>
    <% } else { %>
    <form method="post" action="/ui/runs/<%= it.run.id %>/approve" class="approve"<% if (it.passkey) { %> data-passkey-challenge="<%= it.passkey.challenge %>" data-passkey-rp="<%= it.passkey.rpId %>" data-passkey-credentials="<%= it.passkey.credentials %>"<% } %>>
      <input type="hidden" name="_csrf" value="<%= it.csrf %>">
      <input type="hidden" name="binding" value="<%= it.approval.binding %>">
      <% if (it.passkey) { %><input type="hidden" name="passkey" value=""><% } %>
      <label for="comment" class="sr-only">Comment (optional)</label>
      <input id="comment" name="comment" type="text" maxlength="2000" placeholder="Comment (optional)"<% if (it.error && it.error.field === 'comment') { %> aria-invalid="true" aria-describedby="comment-error"<% } %>>
      <button type="submit" class="primary">Approve<% if (it.passkey) { %> with your passkey<% } %></button>
      <% if (it.error && it.error.field === 'comment') { %><p class="error field-error" id="comment-error" role="alert"><strong><%= it.error.code %></strong>: <%= it.error.message %></p><% } %>
      <% if (it.passkey) { %>
      <p class="note" data-passkey-status role="status" aria-live="polite">Runners accept this approval only with a passkey signature over this run (<%= it.passkey.quorum %> from <%= it.passkey.groups %>).</p>
      <noscript><p class="warn">Signing with a passkey needs JavaScript.</p></noscript>
      <% } %>
    </form>
    <% } %>
    <% if (!it.passkey || it.passkey.has) { %>
    <details class="grant">
      <summary>Allow this for 1 h…</summary>
      <form method="post" action="/ui/runs/<%= it.run.id %>/approve-and-grant"<% if (it.passkey) { %> data-passkey-challenge="<%= it.passkey.challenge %>" data-passkey-rp="<%= it.passkey.rpId %>" data-passkey-credentials="<%= it.passkey.credentials %>"<% } %>>
        <input type="hidden" name="_csrf" value="<%= it.csrf %>">
        <input type="hidden" name="binding" value="<%= it.approval.binding %>">
        <% if (it.passkey) { %><input type="hidden" name="passkey" value=""><% } %>
        <p class="note">Approves this run, and lets <strong><%= it.run.requester %></strong> run <code><%= it.run.action %></code> on <strong><%= it.run.node_name %></strong> with exactly these arguments for the next hour without asking (a standing grant; revoke it on the <a href="/ui/grants">Grants</a> page).<% if (it.passkey) { %> Your passkey signs this run now; the grant is signed next, on the Grants page, by you and the other approvers the registry asks for.<% } %></p>
        <button type="submit">Approve<% if (it.passkey) { %> with your passkey<% } %> and allow this for 1 h</button>
        <% if (it.passkey) { %><p class="note" data-passkey-status role="status" aria-live="polite"></p><% } %>
      </form>
    </details>
    <% } %>
    <details class="deny"<% if (it.error && it.error.field === 'reason') { %> open<% } %>>
      <summary>Deny…</summary>
      <form method="post" action="/ui/runs/<%= it.run.id %>/deny">
        <input type="hidden" name="_csrf" value="<%= it.csrf %>">
        <input type="hidden" name="binding" value="<%= it.approval.binding %>">
        <label for="reason">Reason for denying (the agent is told)</label>
        <input id="reason" name="reason" type="text" maxlength="2000" required<% if (it.error && it.error.field === 'reason') { %> aria-invalid="true" aria-describedby="reason-error"<% } %>>
        <% if (it.error && it.error.field === 'reason') { %><p class="error field-error" id="reason-error" role="alert"><strong><%= it.error.code %></strong>: <%= it.error.message %></p><% } %>
        <button type="submit" class="danger">Deny</button>
      </form>
    </details>
    <% } else { %>
    <p class="why-not"><%= it.decision.whyNot %></p>
    <% } %>
    <% if (it.breakGlass) { %><%~ include('@run-break-glass', it) %><% } %>
  </section>
  <% } %>
</article>
`
