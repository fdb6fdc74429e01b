/** The operator's passkeys: registered, published or not, register another, remove one. */
export const PASSKEYS = `<% layout('@layout') %>
<h1>Passkeys</h1>
<% if (it.error) { %><p class="error" role="alert"><%= it.error %></p><% } %>
<% if (it.flash) { %><p class="ok" role="status"><%= it.flash %></p><% } %>
<section class="card">
  <h2>Why a passkey</h2>
  <p>Runners accept risky actions only with the signatures of the people who approved them. Your passkey signs exactly the run you approve; nobody holding the control plane can sign for you.</p>
  <% if (it.registry) { %>
  <p>The approver registry in force<% if (it.registry.serial) { %> (serial <%= it.registry.serial %>)<% } %> was published <%~ it.fmt.time(it.registry.issued_at) %><% if (it.registry.expires_at) { %> and expires <%~ it.fmt.time(it.registry.expires_at) %><% } %>: <strong><%= it.registry.gate %></strong> needs passkey approvals from <%= it.registry.groups %>.</p>
  <% } else { %>
  <p class="warn">No approver registry is published yet: approvals are not passkey-signed until an administrator publishes one.</p>
  <% } %>
</section>
<section class="card" aria-labelledby="mine-h">
  <h2 id="mine-h">Your passkeys</h2>
  <% if (it.mine.length === 0) { %><p>You have not registered a passkey.</p><% } %>
  <ul class="cards">
  <% it.mine.forEach(function (p) { %>
    <li class="passkey">
      <strong><%= p.label %></strong> <code title="<%= p.credential_id %>"><%= p.short %></code>
      — registered <%~ it.fmt.time(p.registered_at) %> for <%= p.groups.join(', ') || 'no group' %>
      — <% if (p.published) { %><span class="ok-text">published: it can sign approvals</span><% } else { %><span class="warn">not published yet: an administrator runs writ approvers export</span><% } %>
      <form method="post" action="/ui/passkeys/remove" class="inline">
        <input type="hidden" name="_csrf" value="<%= it.csrf %>">
        <input type="hidden" name="credential_id" value="<%= p.credential_id %>">
        <button type="submit">Remove</button>
      </form>
    </li>
  <% }) %>
  </ul>
</section>
<section class="card" aria-labelledby="register-h">
  <h2 id="register-h">Register a passkey</h2>
  <p>For <strong><%= it.rpId %></strong>, as <strong><%= it.operator %></strong> (groups: <%= it.groups %>). Your device will ask you to unlock it.</p>
  <form method="post" action="/ui/passkeys" id="passkey-register" data-options-url="/ui/passkeys/options">
    <input type="hidden" name="_csrf" value="<%= it.csrf %>">
    <input type="hidden" name="response" value="">
    <label for="label">Name it (which device it is)</label>
    <input id="label" name="label" type="text" maxlength="100" placeholder="work laptop">
    <button type="submit" class="primary">Register a passkey</button>
    <p class="note" data-passkey-status role="status" aria-live="polite"></p>
  </form>
  <noscript><p class="warn">Registering a passkey needs JavaScript.</p></noscript>
</section>
`
