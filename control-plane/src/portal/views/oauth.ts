/** MCP authorization: the consent page (which client, as which agent, for whom, how long) and the person's connected agents. */
export const OAUTH_CONSENT = `<% layout('@layout') %>
<section class="card narrow">
  <h1>Connect <%= it.client.name %> to writ?</h1>
  <% if (it.error) { %><p class="error" role="alert"><%= it.error %></p><% } %>
  <p><strong><%= it.client.name %></strong> asks to call writ's MCP tools (<code><%= it.resource %></code>).</p>
  <dl class="facts">
    <dt>Client</dt><dd><%= it.client.name %> <code><%= it.client.id %></code></dd>
    <dt>Sends you back to</dt><dd><code><%= it.redirectUri %></code></dd>
    <dt>On behalf of</dt><dd><%= it.operator %> (person: <%= it.person %>): approval rules see you behind every run it asks for, so you cannot approve those runs yourself.</dd>
    <dt>For how long</dt><dd>Access tokens last <%= it.accessTtl %> and are renewed until <%~ it.fmt.time(it.until) %>, unless you revoke the connection sooner under <a href="/ui/oauth/connections">Connected agents</a>.</dd>
  </dl>
  <% if (it.agents.length === 0) { %>
  <p class="warn">You may not connect a client as any agent here: an administrator lists the people and groups who may, under <code>principals[].oauth</code>.</p>
  <% } %>
  <form method="post" action="/ui/oauth/consent/<%= it.uid %>">
    <input type="hidden" name="_csrf" value="<%= it.csrf %>">
    <% if (it.agents.length > 0) { %>
    <fieldset>
      <legend>It will act as the agent</legend>
      <% it.agents.forEach(function (a, i) { %>
      <label><input type="radio" name="agent" value="<%= a.id %>"<% if (i === 0) { %> checked<% } %>> <strong><%= a.id %></strong><% if (a.groups.length) { %> (groups: <%= a.groups.join(', ') %>)<% } %></label>
      <% }) %>
    </fieldset>
    <button type="submit" name="decision" value="allow" class="primary">Allow</button>
    <% } %>
    <button type="submit" name="decision" value="deny">Decline</button>
  </form>
</section>
`

export const OAUTH_CONNECTIONS = `<% layout('@layout') %>
<h1>Connected agents</h1>
<% if (it.flash) { %><p class="ok" role="status"><%= it.flash %></p><% } %>
<% if (it.error) { %><p class="error" role="alert"><%= it.error %></p><% } %>
<section class="card">
  <p>MCP clients you connected to writ through OAuth. Revoking one ends its access on the next call, on every control plane.</p>
  <% if (it.connections.length === 0) { %><p>You have not connected any client.</p><% } %>
  <ul class="cards">
  <% it.connections.forEach(function (c) { %>
    <li class="connection">
      <strong><%= c.clientName %></strong> <code><%= c.clientId %></code>
      — acts as <strong><%= c.agent %></strong> — connected <%~ it.fmt.time(c.grantedAt) %><% if (c.expiresAt) { %>, until <%~ it.fmt.time(c.expiresAt) %><% } %>
      <form method="post" action="/ui/oauth/connections/revoke" class="inline">
        <input type="hidden" name="_csrf" value="<%= it.csrf %>">
        <input type="hidden" name="grant_id" value="<%= c.grantId %>">
        <button type="submit">Revoke</button>
      </form>
    </li>
  <% }) %>
  </ul>
</section>
`
