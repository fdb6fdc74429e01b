/**
 * The portal's two static assets, held in code so a release executable needs
 * no files beside it. Each is served under a content hash, cached for good.
 */
import { createHash } from 'node:crypto'

const CSS = `
:root { --fg:#1a1a1a; --muted:#4a4a4a; --bg:#f6f6f4; --card:#fff; --line:#d0d0cc; --accent:#0b57d0; --ok:#0a6b2b; --bad:#a4161a; --warn:#7a4a00; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); }
a:focus, button:focus, input:focus, select:focus, summary:focus, pre:focus { outline:3px solid #f5b700; outline-offset:2px; }
.skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:#fff; padding:8px; z-index:10; }
.sr-only { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
.top { display:flex; flex-wrap:wrap; gap:8px 16px; align-items:center; padding:10px 16px; background:#1d2733; color:#fff; }
.top a { color:#fff; text-decoration:none; } .top nav a { padding:4px 2px; } .top nav a[aria-current] { border-bottom:2px solid #fff; }
.brand { font-weight:700; font-size:1.15rem; } .top nav { display:flex; gap:14px; flex-wrap:wrap; }
.signout { margin-left:auto; display:flex; gap:8px; align-items:center; } .who { color:#e8e8e8; }
.count { background:#f5b700; color:#000; border-radius:10px; padding:0 7px; font-size:.85rem; }
main { max-width:960px; margin:0 auto; padding:16px; }
h1 { font-size:1.5rem; margin:.4em 0; } h2 { font-size:1.2rem; margin:.2em 0 .5em; } h3 { font-size:1.05rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; margin:0 0 14px; }
.narrow { max-width:460px; margin:24px auto; }
.cards { list-style:none; padding:0; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:6px 14px; margin:8px 0; } .facts dt { font-weight:600; color:var(--muted); } .facts dd { margin:0; overflow-wrap:anywhere; }
.quote { white-space:pre-wrap; overflow-wrap:anywhere; }
.meta, .note, small { color:var(--muted); }
code, pre { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.9em; overflow-wrap:anywhere; }
pre { background:#111; color:#eee; padding:10px; border-radius:6px; overflow:auto; max-height:24em; white-space:pre-wrap; }
.stderr { background:#2a0f10; }
.error { color:var(--bad); border-left:4px solid var(--bad); padding-left:8px; } .ok { color:var(--ok); border-left:4px solid var(--ok); padding-left:8px; } .warn { color:var(--warn); }
.risk { font-weight:600; } .risk-high, .risk-critical { color:var(--bad); } .risk-medium { color:var(--warn); } .risk-low { color:var(--ok); }
.registry-flag { color:var(--bad); }
.status-pending_approval { color:var(--warn); } .status-succeeded, .online { color:var(--ok); } .status-failed, .status-denied, .status-expired, .status-lost, .status-refused_by_runner, .offline { color:var(--bad); }
label { display:block; font-weight:600; margin:10px 0 4px; }
input, select { font:inherit; width:100%; padding:10px; border:1px solid #767676; border-radius:6px; background:#fff; color:var(--fg); min-height:44px; }
button { font:inherit; min-height:44px; padding:10px 18px; border-radius:6px; border:1px solid #767676; background:#fff; cursor:pointer; margin-top:10px; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); } button.danger { background:var(--bad); color:#fff; border-color:var(--bad); }
.frozen-banner { background:#7a0010; color:#fff; padding:8px 16px; } .frozen-banner p { margin:4px 0; } .frozen-banner a { color:#fff; }
.freeze-form label, .freeze-form input, .freeze-form select { display:block; } .freeze-form input { width:100%; max-width:40rem; } .freeze-row { border-top:1px solid var(--line); padding-top:8px; }
button.link { background:none; border:none; color:#fff; text-decoration:underline; padding:0; min-height:0; margin:0; }
.decide form { margin-bottom:18px; }
.filters { display:grid; grid-template-columns:repeat(auto-fit, minmax(140px, 1fr)); gap:0 12px; align-items:end; margin-bottom:12px; }
.table { overflow-x:auto; } table { border-collapse:collapse; width:100%; background:#fff; } th, td { text-align:left; padding:8px; border-bottom:1px solid var(--line); vertical-align:top; }
.timeline { list-style:none; padding:0; } .timeline li { background:#fff; border:1px solid var(--line); border-radius:6px; padding:8px 10px; margin-bottom:8px; }
.seq { font-weight:700; margin-right:6px; } .hash { color:var(--muted); font-size:.8rem; overflow-wrap:anywhere; }
.tag { background:#e7eefc; color:#0b3a8c; border-radius:4px; padding:0 6px; font-size:.8rem; }
details.evidence { border-top:1px solid var(--line); padding:8px 0; } details.evidence summary { cursor:pointer; }
.crumbs { color:var(--muted); margin:0; }
a.button { display:inline-block; min-height:44px; padding:10px 18px; border-radius:6px; border:1px solid #767676; background:#fff; text-decoration:none; } a.button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
form.inline { display:inline; } form.inline button { margin:0 0 0 8px; min-height:36px; padding:4px 12px; }
.ok-text { color:var(--ok); } li.passkey { padding:8px 0; border-bottom:1px solid var(--line); }
/* The run page: the decision's facts first, the decision bar pinned to the bottom of the screen while the page scrolls. */
.run h1 { font-size:1.35rem; line-height:1.3; overflow-wrap:anywhere; }
.status { margin:.2em 0 .6em; } .tone-wait { color:var(--warn); } .tone-ok { color:var(--ok); } .tone-bad { color:var(--bad); } .tone-busy { color:var(--accent); }
.glance { display:grid; grid-template-columns:max-content 1fr; gap:4px 12px; margin:0 0 12px; } .glance dt { font-weight:600; color:var(--muted); } .glance dd { margin:0; overflow-wrap:anywhere; }
.countdown.urgent { color:#fff; background:var(--bad); padding:0 6px; border-radius:4px; }
.warn-box { background:#fff4e0; border:1px solid #e0b060; border-radius:8px; padding:8px 12px; margin:0 0 12px; } .warn-box ul { margin:4px 0 0; padding-left:18px; }
.decide.bar { position:sticky; bottom:0; z-index:5; background:#fff; border-top:3px solid var(--accent); box-shadow:0 -4px 12px rgba(0,0,0,.12); padding:10px 12px; margin:14px -16px 0; }
.decide.bar form.approve { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:0; }
.decide.bar form.approve input[name=comment] { flex:1 1 140px; width:auto; }
.decide.bar button { margin:0; } .decide.bar .note, .decide.bar .warn { flex-basis:100%; margin:4px 0 0; font-size:.9rem; }
.decide.bar details.deny { margin-top:8px; } .decide.bar details.deny > summary { cursor:pointer; color:var(--bad); font-weight:600; padding:6px 0; }
.decide.bar details.deny form { margin:0; } .decide.bar details.deny label { margin-top:4px; }
.decide.bar details.grant { margin-top:8px; } .decide.bar details.grant > summary { cursor:pointer; font-weight:600; padding:6px 0; } .decide.bar details.grant form { margin:0; }
.decide.bar .why-not { margin:0; }
.field-error { margin:6px 0 0; flex-basis:100%; }
details.more > summary, details.json > summary { cursor:pointer; font-weight:600; }
.happened .decisions { padding-left:18px; }
ol.kernel { list-style:none; margin:0; padding:8px; background:#111; color:#eee; border-radius:6px; max-height:28em; overflow:auto; font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.85em; }
ol.kernel li { padding:1px 0; overflow-wrap:anywhere; } ol.kernel time, ol.kernel .boot { color:#9ab; margin-right:6px; }
ol.kernel .sev-warning .msg { color:#ffd479; } ol.kernel .sev-error .msg { color:#ff8a80; font-weight:600; }
/* Lists on a phone: each table row becomes a card, each cell labelled. */
.list-cards { list-style:none; padding:0; margin:0; } .list-cards li { background:#fff; border:1px solid var(--line); border-radius:8px; padding:8px 12px; margin-bottom:8px; }
.list-cards .line1 { display:flex; flex-wrap:wrap; gap:4px 10px; align-items:baseline; } .list-cards .meta { font-size:.9rem; }
.pager { display:flex; gap:16px; }
@media (max-width: 520px) {
  .facts { grid-template-columns:1fr; } .facts dt { margin-top:6px; } main { padding:10px; } .signout { margin-left:0; }
  .glance { grid-template-columns:max-content 1fr; gap:2px 8px; font-size:.95rem; }
  .decide.bar { margin:14px -10px 0; }
  .table.cards-on-phone table, .table.cards-on-phone tbody, .table.cards-on-phone tr, .table.cards-on-phone td { display:block; width:100%; }
  .table.cards-on-phone thead { display:none; } .table.cards-on-phone tr { border:1px solid var(--line); border-radius:8px; margin-bottom:8px; background:#fff; }
  .table.cards-on-phone td { border:none; padding:4px 10px; } .table.cards-on-phone td::before { content:attr(data-label) ": "; font-weight:600; color:var(--muted); }
}
`

/**
 * The portal's script. Times in the viewer's zone with a relative form, kept
 * current; the decision window's countdown (a warning under 2 minutes); live
 * updates: the run page learns its run's state the moment it subscribes (a
 * run that finished before the socket connected shows as finished) and
 * whenever it changes, the inbox reloads when what waits changes, a plan
 * page reloads as its targets are dispatched and finish (or, while a decision
 * form is open on it, says the plan changed), a page
 * whose session ended says so. Without it every page still works (reload).
 */
const JS = `'use strict';
(function () {
  var body = document.body;
  function rel(ms) {
    var a = Math.abs(ms), n, unit;
    if (a < 45000) return 'just now';
    if (a < 5400000) { n = Math.max(1, Math.round(a / 60000)); unit = 'min'; }
    else if (a < 129600000) { n = Math.round(a / 3600000); unit = 'h'; }
    else { n = Math.round(a / 86400000); unit = n === 1 ? 'day' : 'days'; }
    return ms < 0 ? n + ' ' + unit + ' ago' : 'in ' + n + ' ' + unit;
  }
  var local = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  function times() {
    var els = document.querySelectorAll('time[data-when]');
    for (var i = 0; i < els.length; i++) {
      var at = Date.parse(els[i].getAttribute('datetime'));
      if (isNaN(at)) continue;
      els[i].textContent = local.format(new Date(at)) + ' \\u00b7 ' + rel(at - Date.now());
      els[i].title = new Date(at).toISOString() + ' (UTC)';
    }
  }
  function left(ms) {
    var s = Math.ceil(ms / 1000);
    if (s >= 600) return Math.floor(s / 60) + ' min';
    if (s >= 60) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return s + ' s';
  }
  function countdowns() {
    var els = document.querySelectorAll('[data-countdown]');
    for (var i = 0; i < els.length; i++) {
      var ms = Date.parse(els[i].getAttribute('data-countdown')) - Date.now();
      if (isNaN(ms)) continue;
      if (ms <= 0) { els[i].textContent = 'the decision window has closed'; els[i].classList.add('urgent'); els[i].removeAttribute('data-countdown'); continue; }
      els[i].textContent = left(ms) + ' left' + (ms < 120000 ? ' \\u2014 decide now' : '');
      if (ms < 120000) els[i].classList.add('urgent');
    }
  }
  times(); countdowns();
  setInterval(countdowns, 1000);
  setInterval(times, 30000);

  var runId = body.getAttribute('data-live-run');
  var shown = body.getAttribute('data-live-status');
  var inbox = body.hasAttribute('data-live-inbox');
  var planId = body.getAttribute('data-live-plan');
  var planProgress = body.getAttribute('data-live-progress');
  if (!runId && !inbox && !planId) return;
  var note = document.getElementById('live-note');
  var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var retry = 1000;
  function say(text) { if (note) { note.textContent = text; note.hidden = false; } }
  function showRun(m) {
    shown = m.status;
    body.setAttribute('data-live-status', m.status);
    var status = document.getElementById('run-status');
    if (status) { status.textContent = ''; var b = document.createElement('strong'); b.textContent = m.label || m.status; status.appendChild(b); status.appendChild(document.createTextNode(' \\u2014 ' + m.status_reason)); status.className = 'status tone-' + (m.tone || ''); }
    var bars = document.querySelectorAll('.decide');
    for (var i = 0; i < bars.length; i++) bars[i].remove();
    var cds = document.querySelectorAll('[data-countdown]');
    for (var j = 0; j < cds.length; j++) cds[j].removeAttribute('data-countdown');
    say('This run changed while the page was open: it is now ' + m.status + '. Reload to see everything.');
  }
  function showPlan(m) {
    // A decision form may be half filled in: say what changed instead of reloading it away.
    if (shown === 'pending_approval' && document.querySelector('.decide')) {
      shown = m.status;
      body.setAttribute('data-live-status', m.status);
      if (m.status === 'pending_approval') return;
      var status = document.getElementById('plan-status');
      if (status) { status.textContent = ''; var b = document.createElement('strong'); b.textContent = m.status; status.appendChild(b); status.appendChild(document.createTextNode(' \u2014 ' + m.status_reason)); }
      var bars = document.querySelectorAll('.decide');
      for (var i = 0; i < bars.length; i++) bars[i].remove();
      say('This plan changed while the page was open: it is now ' + m.status + '. Reload to see everything.');
      return;
    }
    location.reload();
  }
  function connect() {
    var ws = new WebSocket(proto + '//' + location.host + '/ui/live');
    ws.onopen = function () { retry = 1000; ws.send(JSON.stringify(runId ? { type: 'run', run_id: runId } : planId ? { type: 'plan', plan_id: planId } : { type: 'inbox' })); };
    ws.onmessage = function (ev) {
      var m; try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === 'subscribed') body.setAttribute('data-live-state', 'subscribed');
      if (m.type === 'run' && m.run_id === runId && m.status !== shown) showRun(m);
      if (m.type === 'inbox' && inbox) location.reload();
      if (m.type === 'plan' && m.plan_id === planId && (m.status !== shown || m.progress !== planProgress)) showPlan(m);
    };
    ws.onclose = function (ev) {
      body.removeAttribute('data-live-state');
      // The session ended (signed out, its time up), or a newer page of the session took this socket's place: reconnecting cannot help.
      if (ev.code === 4401) { body.setAttribute('data-live-state', 'ended'); say('Your session has ended. Sign in again to decide or to follow this page.'); return; }
      if (ev.code === 4409) { body.setAttribute('data-live-state', 'replaced'); say('This page stopped following live updates: too many pages of this session are open. Reload it to follow again.'); return; }
      setTimeout(connect, retry); retry = Math.min(retry * 2, 30000);
    };
  }
  connect();
})();
`

/**
 * Passkeys, in the browser: registering one (options from the server, the
 * authenticator creates the credential, the form posts it) and approving with
 * one (the challenge is the run's binding digest, printed on the form). No
 * passkey code runs elsewhere; without JavaScript the pages say passkeys need it.
 */
const PASSKEYS_JS = `'use strict';
(function () {
  function toBuf(s) {
    s = String(s).replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s); var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64u(buf) {
    var bytes = new Uint8Array(buf); var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }
  function say(form, text) { var el = form.querySelector('[data-passkey-status]'); if (el) el.textContent = text; }
  function field(form, name) { return form.elements.namedItem(name); }
  var supported = !!(window.PublicKeyCredential && navigator.credentials);

  // Every form that needs a passkey's signature over the binding: approving, and breaking the glass.
  var signed = document.querySelectorAll('form[data-passkey-challenge]');
  for (var f = 0; f < signed.length; f++) (function (approve) { approve.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (!supported) { say(approve, 'This browser cannot use passkeys, so it cannot sign this decision.'); return; }
    var button = approve.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    var ids = (approve.getAttribute('data-passkey-credentials') || '').split(' ').filter(Boolean);
    say(approve, 'Confirm with your passkey\\u2026');
    navigator.credentials.get({ publicKey: {
      challenge: toBuf(approve.getAttribute('data-passkey-challenge')),
      rpId: approve.getAttribute('data-passkey-rp'),
      allowCredentials: ids.map(function (id) { return { type: 'public-key', id: toBuf(id) }; }),
      userVerification: 'required', timeout: 120000,
    } }).then(function (cred) {
      var r = cred.response;
      var a = { credential_id: toB64u(cred.rawId), authenticator_data: toB64u(r.authenticatorData), client_data_json: toB64u(r.clientDataJSON), signature: toB64u(r.signature) };
      if (r.userHandle && r.userHandle.byteLength) a.user_handle = toB64u(r.userHandle);
      field(approve, 'passkey').value = JSON.stringify(a);
      say(approve, 'Signed. Sending\\u2026');
      approve.submit();
    }, function (err) {
      if (button) button.disabled = false;
      say(approve, 'No passkey signature (' + (err && err.name ? err.name : 'error') + '): nothing was sent. Try again.');
    });
  }); })(signed[f]);

  var register = document.getElementById('passkey-register');
  if (register) register.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (!supported) { say(register, 'This browser cannot create passkeys.'); return; }
    var button = register.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    say(register, 'Follow your device\\u2019s prompt\\u2026');
    var body = new URLSearchParams();
    body.set('_csrf', field(register, '_csrf').value);
    fetch(register.getAttribute('data-options-url'), { method: 'POST', body: body, credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) { if (!res.ok) throw new Error('the portal answered ' + res.status); return res.json(); })
      .then(function (o) {
        return navigator.credentials.create({ publicKey: {
          challenge: toBuf(o.challenge), rp: o.rp, user: { id: toBuf(o.user.id), name: o.user.name, displayName: o.user.displayName },
          pubKeyCredParams: o.pubKeyCredParams, timeout: o.timeout, attestation: o.attestation, authenticatorSelection: o.authenticatorSelection,
          excludeCredentials: (o.excludeCredentials || []).map(function (c) { return { type: 'public-key', id: toBuf(c.id), transports: c.transports }; }),
        } });
      })
      .then(function (cred) {
        var r = cred.response;
        var json = {
          id: toB64u(cred.rawId), rawId: toB64u(cred.rawId), type: cred.type,
          clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
          response: { clientDataJSON: toB64u(r.clientDataJSON), attestationObject: toB64u(r.attestationObject), transports: r.getTransports ? r.getTransports() : [] },
        };
        if (cred.authenticatorAttachment) json.authenticatorAttachment = cred.authenticatorAttachment;
        field(register, 'response').value = JSON.stringify(json);
        register.submit();
      })
      .catch(function (err) {
        if (button) button.disabled = false;
        say(register, 'No passkey was registered (' + (err && err.message ? err.message : err) + ').');
      });
  });
})();
`

function hashed(body: string, ext: string): { path: string, body: string, etag: string } {
  const digest = createHash('sha256').update(body).digest('hex').slice(0, 12)
  return { path: `/ui/assets/portal-${digest}.${ext}`, body, etag: `"${digest}"` }
}

export const ASSETS = { css: hashed(CSS, 'css'), js: hashed(JS, 'js'), passkeys: hashed(PASSKEYS_JS, 'js') }
