/** Sign-in: every method behind the one seam shows here — single sign-on when configured, token sign-in when enabled. */
export const SIGN_IN = `<% layout('@layout') %>
<section class="card narrow">
  <h1><%= it.errorTitle || 'Sign in to writ' %></h1>
  <% if (it.error) { %><p class="error" role="alert"><%= it.error %></p><% } %>
  <% if (it.next && it.next !== '/ui') { %><p>After signing in you will be taken back to the page you opened.</p><% } %>
  <% if (it.sso) { %>
  <p><a class="button primary" href="<%= it.sso.url %>">Sign in with <%= it.sso.name %></a></p>
  <% } %>
  <% if (it.tokenSignIn) { %>
  <form method="post" action="/ui/sign-in">
    <input type="hidden" name="_csrf" value="<%= it.csrf %>">
    <input type="hidden" name="next" value="<%= it.next %>">
    <label for="token">Operator token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required spellcheck="false">
    <button type="submit"<% if (!it.sso) { %> class="primary"<% } %>>Sign in<% if (it.sso) { %> with a token<% } %></button>
  </form>
  <% } else if (!it.sso) { %>
  <p>Token sign-in is switched off on this control plane.</p>
  <% } %>
</section>
`

/** A one-time sign-in link (as \`writ dev\` prints): opening it only shows this button; the POST signs in. */
export const SIGN_IN_LINK = `<% layout('@layout') %>
<section class="card narrow">
  <h1>Sign in</h1>
  <% if (it.error) { %><p class="error" role="alert"><%= it.error %></p><% } else { %>
  <p>This one-time link signs you in as <strong><%= it.operatorId %></strong>.</p>
  <form method="post" action="/ui/sign-in/link">
    <input type="hidden" name="_csrf" value="<%= it.csrf %>">
    <input type="hidden" name="code" value="<%= it.code %>">
    <button type="submit" class="primary">Sign in as <%= it.operatorId %></button>
  </form>
  <% } %>
</section>
`
