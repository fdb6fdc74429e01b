/** The page frame: navigation, who is signed in, the live-update script. Every page works without the script. */
export const LAYOUT = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<% if (it.refreshSeconds) { %><noscript><meta http-equiv="refresh" content="<%= it.refreshSeconds %>"></noscript><% } %>
<title><%= it.title %> · writ</title>
<link rel="stylesheet" href="<%= it.assets.css %>">
</head>
<body<% if (it.liveRun) { %> data-live-run="<%= it.liveRun %>" data-live-status="<%= it.liveStatus %>"<% } %><% if (it.liveInbox) { %> data-live-inbox="1"<% } %><% if (it.livePlan) { %> data-live-plan="<%= it.livePlan.id %>" data-live-status="<%= it.livePlan.status %>" data-live-progress="<%= it.livePlan.progress %>"<% } %>>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/ui">writ</a>
  <% if (it.operator) { %>
  <nav aria-label="Portal">
    <a href="/ui"<% if (it.nav === 'inbox') { %> aria-current="page"<% } %>>Inbox<% if (it.pendingCount) { %> <span class="count" aria-label="<%= it.pendingCount %> waiting"><%= it.pendingCount %></span><% } %></a>
    <a href="/ui/runs"<% if (it.nav === 'runs') { %> aria-current="page"<% } %>>Runs</a>
    <a href="/ui/audit"<% if (it.nav === 'audit') { %> aria-current="page"<% } %>>Audit</a>
    <a href="/ui/nodes"<% if (it.nav === 'nodes') { %> aria-current="page"<% } %>>Nodes</a>
    <a href="/ui/grants"<% if (it.nav === 'grants') { %> aria-current="page"<% } %>>Grants</a>
    <a href="/ui/reviews"<% if (it.nav === 'reviews') { %> aria-current="page"<% } %>>Reviews</a>
    <% if (it.passkeysNav) { %><a href="/ui/passkeys"<% if (it.nav === 'passkeys') { %> aria-current="page"<% } %>>Passkeys</a><% } %>
    <% if (it.connectionsNav) { %><a href="/ui/oauth/connections"<% if (it.nav === 'connections') { %> aria-current="page"<% } %>>Connected agents</a><% } %>
  </nav>
  <form class="signout" method="post" action="/ui/sign-out">
    <input type="hidden" name="_csrf" value="<%= it.csrf %>">
    <span class="who">Signed in as <strong><%= it.operator %></strong></span>
    <button type="submit" class="link">Sign out</button>
  </form>
  <% } %>
</header>
<% if (it.operator && it.freezes && it.freezes.length) { %>
<div class="frozen-banner" role="alert">
  <% it.freezes.forEach(function (f) { %><p><strong>Frozen:</strong> <%= f.scope === 'agents' ? 'every agent' : 'principal ' + f.scope %> — by <%= f.by %>, <%~ it.fmt.time(f.at) %>: <%= f.reason %>. Change-making requests are refused; approved runs are held.</p><% }) %>
  <p><a href="/ui/nodes#freeze">Unfreeze on the Nodes page</a></p>
</div>
<% } %>
<main id="main">
<p id="live-note" class="note" role="status" aria-live="polite" hidden></p>
<%~ it.body %>
</main>
<% if (it.operator) { %><script src="<%= it.assets.js %>" defer></script><% } %>
<% if (it.operator && it.passkeyScript) { %><script src="<%= it.assets.passkeys %>" defer></script><% } %>
</body>
</html>
`
