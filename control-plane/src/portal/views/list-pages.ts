/** The inbox, the run list, the audit timeline and the nodes page. */
export const INBOX = `<% layout('@layout') %>
<h1>Waiting for a decision</h1>
<% if (it.plans && it.plans.length) { %><ul class="cards plans">
<% it.plans.forEach(function (p) { %>
  <li class="card">
    <h2><a href="/ui/plans/<%= p.id %>">Plan: <%= p.action %> on <%= p.count %> nodes</a></h2>
    <p><span class="risk risk-<%= p.risk %>"><%= p.risk %> risk</span> · one decision for every node</p>
    <p class="quote"><%= p.reason %></p>
    <p class="meta">by <%= p.requester %> · <strong><%= p.timeLeft %></strong> left</p>
  </li>
<% }) %>
</ul><% } %>
<% if (it.total === 0 && !(it.plans && it.plans.length)) { %><p class="card">Nothing is waiting for approval.</p><% } else if (it.paged || it.older) { %><p><%= it.total %> runs wait in all; this page shows <%= it.runs.length %> of them, newest first.</p><% } %>
<ul class="cards">
<% it.runs.forEach(function (r) { %>
  <li class="card">
    <h2><a href="/ui/runs/<%= r.id %>"><%= r.title %></a></h2>
    <p><code><%= r.action %></code> on <strong><%= r.node %></strong> · <span class="risk risk-<%= r.risk %>"><%= r.risk %> risk</span></p>
    <p class="quote"><%= r.reason %></p>
    <p class="meta">by <%= r.requester %>, <%~ it.fmt.time(r.created_at) %> · <%= r.approvals %> of <%= r.quorum %> approvals · <strong class="countdown<% if (r.urgent) { %> urgent<% } %>" data-countdown="<%= r.expires_at %>" title="<%= r.expires_at %>"><%= r.timeLeft %> left</strong><% if (!r.mine) { %> · <em>you are not an approver of this run</em><% } %></p>
  </li>
<% }) %>
</ul>
<% if (it.paged && it.runs.length === 0 && it.total > 0) { %><p class="card">No older request is waiting.</p><% } %>
<% if (it.paged || it.older) { %><p class="pager"><% if (it.paged) { %><a href="/ui">Newest requests</a><% } %><% if (it.paged && it.older) { %> · <% } %><% if (it.older) { %><a href="<%= it.older %>">Older requests</a><% } %></p><% } %>
`

export const RUNS = `<% layout('@layout') %>
<h1>Runs</h1>
<form class="filters" method="get" action="/ui/runs">
  <label for="f-status">Status</label>
  <select id="f-status" name="status"><option value="">any</option><% it.statuses.forEach(function (s) { %><option<% if (s === it.filter.status) { %> selected<% } %>><%= s %></option><% }) %></select>
  <label for="f-node">Node</label><input id="f-node" name="node" value="<%= it.filter.node || '' %>">
  <label for="f-action">Action</label><input id="f-action" name="action" value="<%= it.filter.action || '' %>">
  <% if (it.filter.system) { %><input type="hidden" name="system" value="1"><% } %>
  <button type="submit">Filter</button>
</form>
<p class="note"><% if (it.filter.system) { %>Showing the control plane's own runs (impact previews) too. <a href="<%= it.toggle %>">Hide them</a><% } else { %>The control plane's own runs (impact previews) are hidden. <a href="<%= it.toggle %>">Show them</a><% } %></p>
<div class="table cards-on-phone"><table>
  <caption class="sr-only">Recent runs, newest first</caption>
  <thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Node</th><th scope="col">By</th><th scope="col">Requested</th></tr></thead>
  <tbody>
  <% it.runs.forEach(function (r) { %>
    <tr><td data-label="Run"><a href="/ui/runs/<%= r.id %>"><%= r.summary %></a><br><small><code><%= r.action %></code> · <code><%= r.id %></code></small></td><td data-label="Status" class="tone-<%= r.tone %>"><%= r.status %></td><td data-label="Node"><%= r.node %></td><td data-label="By"><%= r.requester %></td><td data-label="Requested"><%~ it.fmt.time(r.created_at) %></td></tr>
  <% }) %>
  </tbody>
</table></div>
<% if (it.runs.length === 0) { %><p>No run matches.</p><% } %>
<% if (it.newest || it.older) { %><p class="pager"><% if (it.newest) { %><a href="<%= it.newest %>">Newest runs</a><% } %><% if (it.older) { %><a href="<%= it.older %>">Older runs</a><% } %></p><% } %>
`

export const AUDIT = `<% layout('@layout') %>
<h1>Audit trail</h1>
<p>Every request, decision, dispatch and result, in chain order. The position is the event's sequence in the hash chain; each event holds the hash of the one before it.</p>
<form class="filters" method="get" action="/ui/audit">
  <label for="a-run">Run</label><input id="a-run" name="run_id" value="<%= it.filter.run_id || '' %>">
  <label for="a-type">Type</label><input id="a-type" name="type" value="<%= it.filter.type || '' %>" placeholder="approval.granted">
  <label for="a-actor">Actor</label><input id="a-actor" name="actor" value="<%= it.filter.actor || '' %>">
  <button type="submit">Filter</button>
</form>
<ol class="timeline">
<% it.events.forEach(function (e) { %>
  <li>
    <span class="seq" title="chain position">#<%= e.seq %></span>
    <%~ it.fmt.time(e.at) %>
    <strong><%= e.type %></strong> by <%= e.actor %>
    <% if (e.run_id) { %>· <a href="/ui/runs/<%= e.run_id %>"><code><%= e.run_id %></code></a><% } %>
    <% if (e.summary) { %><div class="quote"><%= e.summary %></div><% } %>
    <div class="hash">prev <code><%= e.prev %></code> → hash <code><%= e.hash %></code></div>
  </li>
<% }) %>
</ol>
<% if (it.events.length === 0) { %><p>No event matches.</p><% } %>
<% if (it.older) { %><p><a href="<%= it.older %>">Older events</a></p><% } %>
`

export const NODES = `<% layout('@layout') %>
<h1>Nodes</h1>
<div class="table"><table>
  <caption class="sr-only">Nodes that have sent a heartbeat</caption>
  <thead><tr><th scope="col">Node</th><th scope="col">State</th><th scope="col">Last seen</th><th scope="col">Pool / datacenter</th><th scope="col">Packs</th><% if (it.registryColumn) { %><th scope="col">Approver registry</th><% } %></tr></thead>
  <tbody>
  <% it.nodes.forEach(function (n) { %>
    <tr><td><strong><%= n.name %></strong><br><code><%= n.id %></code></td><td class="<%= n.online ? 'online' : 'offline' %>"><%= n.online ? 'online' : 'offline' %><% if (n.draining) { %> (draining)<% } %></td><td><%~ it.fmt.time(n.last_seen) %></td><td><%= n.pool %></td><td><%= n.packs %></td><% if (it.registryColumn) { %><td class="registry"><%= n.registry.text %><% if (n.registry.flag) { %><br><strong class="registry-flag"><%= n.registry.flag %></strong><% } %></td><% } %></tr>
  <% }) %>
  </tbody>
</table></div>
<% if (it.current) { %><p>The control plane's approver registry: serial <%= it.current.serial %> · <code><%= it.current.digest.slice(0, 12) %>…</code>, issued <%~ it.fmt.time(it.current.issued_at) %>.</p><% } %>
<% if (it.nodes.length === 0) { %><p>No node has sent a heartbeat yet.</p><% } %>
<section class="card" id="freeze" aria-labelledby="freeze-h">
  <h2 id="freeze-h">Freeze</h2>
  <p>A freeze refuses every change-making request from its scope at once, on every replica, and holds runs already approved; reads go on. Slack is told.</p>
  <% if (it.brakeError) { %><p class="error" role="alert"><strong><%= it.brakeError.code %></strong>: <%= it.brakeError.message %></p><% } %>
  <% if (it.brakeFlash) { %><p class="ok" role="status"><%= it.brakeFlash %></p><% } %>
  <% it.freezeList.forEach(function (f) { %>
  <form method="post" action="/ui/unfreeze" class="freeze-row">
    <input type="hidden" name="_csrf" value="<%= it.csrf %>">
    <input type="hidden" name="scope" value="<%= f.scope %>">
    <p><strong><%= f.scope === 'agents' ? 'Every agent' : 'Principal ' + f.scope %></strong> frozen by <%= f.by %>, <%~ it.fmt.time(f.at) %>: <%= f.reason %></p>
    <button type="submit">Unfreeze <%= f.scope === 'agents' ? 'every agent' : f.scope %></button>
  </form>
  <% }) %>
  <form method="post" action="/ui/freeze" class="freeze-form">
    <input type="hidden" name="_csrf" value="<%= it.csrf %>">
    <label for="freeze-reason">Reason (every refused agent and Slack read it)</label>
    <input id="freeze-reason" name="reason" type="text" maxlength="500" required>
    <label for="freeze-scope">Scope</label>
    <select id="freeze-scope" name="scope"><option value="agents">every agent</option><% it.freezeScopes.forEach(function (p) { %><option value="<%= p %>"><%= p %></option><% }) %></select>
    <button type="submit" class="danger">Freeze</button>
  </form>
</section>
`

export const ERROR_PAGE = `<% layout('@layout') %>
<section class="card narrow">
  <h1><%= it.heading %></h1>
  <p class="error" role="alert"><strong><%= it.code %></strong>: <%= it.message %></p>
  <% if (it.hint) { %><p><%= it.hint %></p><% } %>
  <p><% if (it.operator) { %><a href="/ui">Back to the inbox</a> · <a href="/ui/runs">Runs</a> · <a href="/ui/audit">Audit</a><% } else { %><a href="/ui/sign-in">Sign in</a><% } %></p>
</section>
`
