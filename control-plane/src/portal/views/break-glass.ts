/** Break-glass in the portal: the confirmation form on a run page, and the review items page. */

/** On a run page whose policy rule permits break-glass: a folded form that names the action and node the operator runs alone. */
export const BREAK_GLASS_FORM = `<details class="break-glass"<% if (it.error && it.error.field === 'break-glass') { %> open<% } %>>
  <summary>Break the glass…</summary>
  <% if (it.breakGlass.notAllowed) { %>
  <p class="warn">Break-glass is not possible on this run: <%= it.breakGlass.notAllowed %>.</p>
  <% } else if (it.breakGlass.passkeyNeeded && !it.breakGlass.passkey) { %>
  <p class="warn">Break-glass on this run needs your passkey's signature over its binding (the approver registry asks for it), and none of your passkeys is in the published registry. <a href="/ui/passkeys">Register one</a>.</p>
  <% } else { %>
  <form method="post" action="/ui/runs/<%= it.run.id %>/break-glass" class="break-glass-form"<% if (it.breakGlass.passkey) { %> data-passkey-challenge="<%= it.breakGlass.passkey.challenge %>" data-passkey-rp="<%= it.breakGlass.passkey.rpId %>" data-passkey-credentials="<%= it.breakGlass.passkey.credentials %>"<% } %>>
    <input type="hidden" name="_csrf" value="<%= it.csrf %>">
    <input type="hidden" name="binding" value="<%= it.approval.binding %>">
    <% if (it.breakGlass.passkey) { %><input type="hidden" name="passkey" value=""><p class="note" data-passkey-status></p><% } %>
    <p class="warn">Break-glass runs <strong><%= it.breakGlass.phrase %></strong> now, on your approval alone, without the <%= it.approval.quorum %> approval(s) it needs. It is broadcast as break-glass, audited, and leaves a review another approver must acknowledge; until then you cannot break the glass again.</p>
    <label for="bg-reason">Why the quorum cannot be reached</label>
    <input id="bg-reason" name="reason" type="text" maxlength="2000" required>
    <label><input type="checkbox" name="confirm" value="<%= it.breakGlass.phrase %>" required> I run <%= it.breakGlass.phrase %> alone</label>
    <% if (it.error && it.error.field === 'break-glass') { %><p class="error field-error" role="alert"><strong><%= it.error.code %></strong>: <%= it.error.message %></p><% } %>
    <button type="submit" class="danger">Break the glass<% if (it.breakGlass.passkey) { %> with your passkey<% } %>: run <%= it.breakGlass.phrase %></button>
  </form>
  <% } %>
</details>
`

export const REVIEWS = `<% layout('@layout') %>
<h1>Break-glass reviews</h1>
<p class="note">Runs an approver dispatched alone. Another approver of the action acknowledges each; until then its author cannot break the glass again.</p>
<% if (it.flash) { %><p class="flash" role="status"><%= it.flash %></p><% } %>
<% if (it.error) { %><p class="error" role="alert"><strong><%= it.error.code %></strong>: <%= it.error.message %></p><% } %>
<% if (it.reviews.length === 0) { %><p>No break-glass runs.</p><% } else { %>
<div class="table"><table>
  <caption class="sr-only">Break-glass review items, newest first</caption>
  <thead><tr><th scope="col">Run</th><th scope="col">By</th><th scope="col">Why</th><th scope="col">When</th><th scope="col">Review</th></tr></thead>
  <tbody>
  <% it.reviews.forEach(function (r) { %>
    <tr><td><a href="/ui/runs/<%= r.run_id %>"><code><%= r.action %></code> on <%= r.node %></a></td><td><%= r.by %></td><td class="quote"><%= r.reason %></td><td><%~ it.fmt.time(r.at) %></td>
    <td><% if (r.acknowledged_at) { %>✓ acknowledged by <strong><%= r.acknowledged_by %></strong>, <%~ it.fmt.time(r.acknowledged_at) %><% if (r.comment) { %>: “<%= r.comment %>”<% } %><% } else if (r.by === it.operator) { %>waiting for another approver<% } else { %>
      <form method="post" action="/ui/reviews/<%= r.id %>/ack" class="ack">
        <input type="hidden" name="_csrf" value="<%= it.csrf %>">
        <label for="c-<%= r.id %>" class="sr-only">Comment (optional)</label>
        <input id="c-<%= r.id %>" name="comment" type="text" maxlength="2000" placeholder="Comment (optional)">
        <button type="submit">Acknowledge</button>
      </form><% } %></td></tr>
  <% }) %>
  </tbody>
</table></div>
<% } %>
`
