/** The Grants page: every standing grant, what it covers, for how long and how many more runs; revoke and co-sign forms. */
export const GRANTS_PAGE = `<% layout('@layout') %>
<h1>Standing grants</h1>
<p class="note">A grant lets one principal run one action without asking each time, until it expires, is used up or is revoked. Runners check it like an approval. Give one from a run waiting for approval (“Approve and allow this for 1 h”) or with <code>writ grant</code>.</p>
<% if (it.flash) { %><p class="note" role="status"><%= it.flash %></p><% } %>
<% if (it.grants.length === 0) { %><p class="card">No grant has been given.</p><% } else { %>
<div class="table cards-on-phone"><table>
  <caption class="sr-only">Standing grants, newest first</caption>
  <thead><tr><th scope="col">Grant</th><th scope="col">Status</th><th scope="col">For</th><th scope="col">Uses left</th><th scope="col">Until</th><th scope="col">Approved by</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
  <tbody>
  <% it.grants.forEach(function (g) { %>
    <tr id="grant-<%= g.id %>">
      <td data-label="Grant"><code><%= g.action %></code> on <strong><%= g.node %></strong><br><small><%= g.args %></small><br><small class="quote"><%= g.reason %></small><br><small><code><%= g.id %></code></small></td>
      <td data-label="Status" class="tone-<%= g.tone %>"><%= g.status %><% if (g.revoked_by) { %><br><small>by <%= g.revoked_by %></small><% } %><% if (g.covers_nothing) { %><br><small class="warn">covers nothing: <%= g.covers_nothing %></small><% } %></td>
      <td data-label="For"><%= g.principal %></td>
      <td data-label="Uses left"><%= g.uses_left === null ? 'unlimited' : g.uses_left + ' of ' + g.uses %></td>
      <td data-label="Until"><%~ it.fmt.time(g.expires_at) %></td>
      <td data-label="Approved by"><%= g.approvals.map(function (a) { return a.by + (a.passkey ? ' (passkey)' : '') }).join(', ') %> (<%= g.approvals.length %> of <%= g.quorum %><% if (g.passkey_required) { %> passkey signatures<% } %>)</td>
      <td data-label="Actions">
        <% if (g.status === 'pending' && g.mine) { %>
        <p class="note">You approved it; it waits for <%= g.quorum - g.approvals.length %> more from other approvers.</p>
        <% } else if (g.status === 'pending' && g.sign && !g.sign.has) { %>
        <p class="warn">Approving this grant needs your passkey's signature over its digest (runners check it), and none of your passkeys is in the published approver registry. <a href="/ui/passkeys">Register one</a>.</p>
        <% } else if (g.status === 'pending') { %>
        <form method="post" action="/ui/grants/<%= g.id %>/approve"<% if (g.sign) { %> data-passkey-challenge="<%= g.sign.challenge %>" data-passkey-rp="<%= g.sign.rpId %>" data-passkey-credentials="<%= g.sign.credentials %>"<% } %>>
          <input type="hidden" name="_csrf" value="<%= it.csrf %>">
          <input type="hidden" name="digest" value="<%= g.digest %>">
          <% if (g.sign) { %><input type="hidden" name="passkey" value=""><% } %>
          <button type="submit" class="primary"><% if (g.sign) { %>Sign with your passkey<% } else { %>Co-sign<% } %></button>
          <% if (g.sign) { %>
          <p class="note" data-passkey-status role="status" aria-live="polite">Runners accept this grant only with passkey signatures over its digest <code><%= g.digest.slice(0, 12) %>…</code>.</p>
          <noscript><p class="warn">Signing with a passkey needs JavaScript.</p></noscript>
          <% } %>
        </form>
        <% } %>
        <% if (g.status === 'active' || g.status === 'pending') { %>
        <form method="post" action="/ui/grants/<%= g.id %>/revoke">
          <input type="hidden" name="_csrf" value="<%= it.csrf %>">
          <button type="submit" class="danger">Revoke</button>
        </form>
        <% } %>
      </td>
    </tr>
  <% }) %>
  </tbody>
</table></div>
<% } %>
`
