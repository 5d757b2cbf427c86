/**
 * The console's page and stylesheet, served by src/routes/console.ts. This module runs on the
 * server (it is not sent to the browser); the browser code is the other modules of this folder,
 * compiled by the project's build to dist/console/*.js and loaded as ES modules.
 *
 * The page holds no inline script or style (the CSP forbids both) and loads nothing from
 * anywhere else: no CDN, no font.
 */

const WINDOWS = [
  ['Minute', 'minute'],
  ['Hour', 'hour'],
  ['Day', 'day'],
] as const;

const UNITS = [
  ['requests', 'Requests', 'requestsPer'],
  ['tokens', 'LLM tokens', 'tokensPer'],
] as const;

const SCOPES = [
  ['client', 'perClientRequestLimits', 'Per client', 'counted for each client address separately'],
  ['global', 'globalRequestLimits', 'Global', 'counted across every client of the token'],
] as const;

function limitsFieldset(scope: (typeof SCOPES)[number]): string {
  const [id, field, title, hint] = scope;
  const rows = UNITS.map(([unitId, unitTitle, prefix]) => {
    const cells = WINDOWS.map(([windowTitle, windowId]) => {
      const name = `${prefix}${windowTitle}`;
      const inputId = `limit-${id}-${unitId}-${windowId}`;
      return `<div class="field limit">
<label for="${inputId}"><span class="sr-only">${title} ${unitId === 'requests' ? 'requests' : 'LLM tokens'} </span>per ${windowId}</label>
<input id="${inputId}" type="number" inputmode="numeric" min="1" step="1" placeholder="no limit" autocomplete="off"
 data-field="requestAuthAndQuotas.requestQuotas.${field}.${name}" aria-describedby="${inputId}-error">
<p class="field-error" id="${inputId}-error" hidden></p>
</div>`;
    }).join('\n');
    return `<div class="limit-row"><span class="limit-unit" aria-hidden="true">${unitTitle}</span>${cells}</div>`;
  }).join('\n');
  return `<fieldset class="limits" data-field="requestAuthAndQuotas.requestQuotas.${field}" aria-describedby="limits-${id}-hint limits-${id}-error">
<legend>${title} limits</legend>
<p class="hint" id="limits-${id}-hint">${hint}; empty means no limit</p>
${rows}
<p class="field-error" id="limits-${id}-error" hidden></p>
</fieldset>`;
}

export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Console · aisbreaker-gateway</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <h1>aisbreaker-gateway <span>console</span></h1>
  <nav aria-label="Documentation"><a href="/docs">API reference</a></nav>
</header>
<main id="main">
<noscript><p class="banner error">The console needs JavaScript (served by this gateway; nothing from elsewhere).</p></noscript>

<section class="token-bar" aria-labelledby="token-bar-title">
  <h2 id="token-bar-title" class="sr-only">Token in use</h2>
  <div class="field grow">
    <label for="current-token">Token</label>
    <div class="input-row">
      <input id="current-token" type="password" autocomplete="off" spellcheck="false" placeholder="aisbreaker_… paste or mint one" aria-describedby="current-token-hint">
      <button type="button" id="current-token-show" aria-pressed="false" aria-controls="current-token">Show</button>
      <button type="button" id="current-token-forget">Forget</button>
    </div>
    <p class="hint" id="current-token-hint">Used by Inspect and Try. Kept in this page only, unless you tick "Remember".</p>
  </div>
  <div class="field check">
    <input id="remember-token" type="checkbox">
    <label for="remember-token">Remember on this device</label>
  </div>
</section>

<div class="tabs" role="tablist" aria-label="Console sections">
  <button type="button" role="tab" id="tab-mint" aria-controls="panel-mint" aria-selected="true" tabindex="0">Mint</button>
  <button type="button" role="tab" id="tab-inspect" aria-controls="panel-inspect" aria-selected="false" tabindex="-1">Inspect</button>
  <button type="button" role="tab" id="tab-try" aria-controls="panel-try" aria-selected="false" tabindex="-1">Try</button>
</div>

<section role="tabpanel" id="panel-mint" aria-labelledby="tab-mint" tabindex="-1">
  <!-- above the long form: a minted token is in sight at once -->
  <section class="minted" id="minted" hidden aria-labelledby="minted-title">
    <h2 id="minted-title" tabindex="-1">Your new token</h2>
    <p class="warning">Shown once: this gateway keeps no copy. Copy it now. <span id="minted-expiry"></span></p>
    <div class="field">
      <label for="minted-token">New token</label>
      <textarea id="minted-token" readonly rows="5" spellcheck="false"></textarea>
    </div>
    <div class="actions">
      <button type="button" class="primary" id="copy-token" data-copy="minted-token">Copy token</button>
      <button type="button" id="minted-inspect">Inspect it</button>
      <button type="button" id="minted-try">Try it</button>
      <button type="button" id="minted-dismiss">Done</button>
    </div>
    <h3 id="curl-title">curl</h3>
    <pre><code id="snippet-curl" aria-labelledby="curl-title"></code></pre>
    <button type="button" data-copy="snippet-curl">Copy curl command</button>
    <h3 id="sdk-title">OpenAI SDK (JavaScript)</h3>
    <pre><code id="snippet-sdk" aria-labelledby="sdk-title"></code></pre>
    <button type="button" data-copy="snippet-sdk">Copy SDK snippet</button>
  </section>
  <form id="mint-form" method="post" action="/console/" novalidate>
    <div class="admin-key" id="admin-key-box" hidden>
      <div class="field">
        <label for="admin-key">Admin key</label>
        <input id="admin-key" type="password" autocomplete="off" spellcheck="false" data-field="adminKey" aria-describedby="admin-key-hint admin-key-error">
        <p class="hint" id="admin-key-hint">This server mints only with its admin key. It stays in this page's memory and is sent only with mint requests.</p>
        <p class="field-error" id="admin-key-error" hidden></p>
      </div>
    </div>

    ${SCOPES.map(limitsFieldset).join('\n')}

    <fieldset class="secrets" data-field="requestAuthAndQuotas.serviceSecrets" aria-describedby="secrets-hint secrets-error">
      <legend>Service secrets</legend>
      <p class="hint" id="secrets-hint">The third-party key the token carries per service (a serviceId prefix; empty = every service). <code>chat:dummy</code> and <code>chat:echo</code> need none.</p>
      <ol id="secret-rows" class="secret-rows"></ol>
      <datalist id="service-ids"></datalist>
      <button type="button" id="add-secret">Add service secret</button>
      <p class="field-error" id="secrets-error" hidden></p>
    </fieldset>

    <fieldset class="expiry">
      <legend>Expiry</legend>
      <div class="field">
        <label for="expiry">Expires after</label>
        <input id="expiry" type="text" value="2h" autocomplete="off" spellcheck="false" data-field="expirationTimeSpan" aria-describedby="expiry-hint expiry-error">
        <p class="hint" id="expiry-hint" aria-live="polite"></p>
        <p class="field-error" id="expiry-error" hidden></p>
      </div>
      <div class="presets" role="group" aria-label="Expiry presets">
        <button type="button" data-expiry="1h">1 hour</button>
        <button type="button" data-expiry="2h">2 hours</button>
        <button type="button" data-expiry="1d">1 day</button>
        <button type="button" data-expiry="7d">7 days</button>
        <button type="button" data-expiry="30d">30 days</button>
        <button type="button" data-expiry="365d">1 year</button>
      </div>
    </fieldset>

    <p class="form-error" id="mint-error" role="alert" hidden></p>
    <div class="actions"><button type="submit" class="primary" id="mint-submit">Mint token</button></div>
  </form>

</section>

<section role="tabpanel" id="panel-inspect" aria-labelledby="tab-inspect" tabindex="-1" hidden>
  <div class="actions">
    <button type="button" class="primary" id="inspect-button">Inspect token</button>
    <button type="button" class="danger" id="revoke-button" disabled>Revoke token…</button>
  </div>
  <p class="form-error" id="inspect-error" role="alert" hidden></p>
  <p class="notice" id="revoke-result" role="status" hidden></p>
  <div id="token-info" hidden>
    <dl class="facts">
      <dt>Status</dt><dd id="info-status"></dd>
      <dt>Name</dt><dd id="info-name"></dd>
      <dt>Scopes</dt><dd id="info-scopes"></dd>
      <dt>Token id (jti)</dt><dd><code id="info-jti"></code></dd>
      <dt>Bound to host</dt><dd><code id="info-host"></code></dd>
      <dt>Issued</dt><dd id="info-issued"></dd>
      <dt>Expires</dt><dd><span id="info-expires"></span> <span class="countdown" id="info-countdown"></span></dd>
      <dt>Services</dt><dd><ul id="info-services" class="chips"></ul></dd>
    </dl>
    <h2>Quotas</h2>
    <p class="hint" id="quota-empty" hidden>No limits: this token may be used without count.</p>
    <ul id="info-quotas" class="quotas"></ul>
    <p class="hint">Secrets are never shown: not here, not in any response of the gateway.</p>
  </div>
  <dialog id="revoke-dialog" aria-labelledby="revoke-dialog-title" aria-describedby="revoke-dialog-text">
    <form method="dialog">
      <h2 id="revoke-dialog-title">Revoke this token?</h2>
      <p id="revoke-dialog-text">Every app using it is refused from now on, on every instance of the gateway. This cannot be undone.</p>
      <div class="actions">
        <button type="submit" value="cancel" id="revoke-cancel" autofocus>Cancel</button>
        <button type="submit" value="revoke" class="danger" id="revoke-confirm">Revoke</button>
      </div>
    </form>
  </dialog>
</section>

<section role="tabpanel" id="panel-try" aria-labelledby="tab-try" tabindex="-1" hidden>
  <form id="chat-form" method="post" action="/console/" novalidate>
    <div class="field">
      <label for="chat-model">Model</label>
      <input id="chat-model" type="text" list="model-ids" value="chat:dummy/any" autocomplete="off" spellcheck="false" aria-describedby="chat-model-hint">
      <datalist id="model-ids"></datalist>
      <p class="hint" id="chat-model-hint"><code>&lt;serviceId&gt;/&lt;model&gt;</code>, e.g. <code>chat:dummy/any</code> or <code>chat:openai.com/gpt-4o-mini</code>.</p>
    </div>
    <ol id="transcript" class="transcript" role="log" aria-label="Conversation" aria-live="polite"></ol>
    <div class="field">
      <label for="chat-input">Message</label>
      <textarea id="chat-input" rows="3" aria-describedby="chat-input-hint"></textarea>
      <p class="hint" id="chat-input-hint">Enter sends, Shift+Enter starts a new line. Sent through <code>/v1/chat/completions</code>, streamed.</p>
    </div>
    <div class="actions">
      <button type="submit" class="primary" id="chat-send">Send</button>
      <button type="button" id="chat-stop" disabled>Stop</button>
      <button type="button" id="chat-reset">New chat</button>
    </div>
  </form>
</section>
<p class="sr-only" id="announce" role="status" aria-live="polite"></p>
</main>
</body>
</html>
`;

export const CONSOLE_CSS = `:root{color-scheme:light dark;--bg:#f6f7f9;--panel:#fff;--text:#1c2330;--muted:#5b6473;--line:#d9dde5;--accent:#2455c3;--accent-text:#fff;--danger:#b42318;--ok:#1d7a46;--warn-bg:#fff6db;--err-bg:#fdecea;--code:#eef1f5;--focus:#f59e0b}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--panel:#1b2029;--text:#e6e9ef;--muted:#a3acba;--line:#343b48;--accent:#6d96ff;--accent-text:#0d1220;--danger:#ff7b72;--ok:#56d08a;--warn-bg:#3a3115;--err-bg:#3d1d1b;--code:#232a35}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:56rem;margin:0 auto;padding:0 1rem 3rem}
.top{max-width:56rem;margin:0 auto;padding:1.2rem 1rem .6rem;display:flex;align-items:baseline;justify-content:space-between;gap:1rem}
h1{font-size:1.3rem;margin:0}h1 span{color:var(--muted);font-weight:400}
h2{font-size:1.1rem;margin:1.2rem 0 .5rem}h3{font-size:.95rem;margin:1rem 0 .3rem}
a{color:var(--accent)}
code,pre,textarea#minted-token,#current-token{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{background:var(--code);padding:.7rem .8rem;border-radius:6px;overflow:auto;margin:.3rem 0 .4rem;white-space:pre-wrap;word-break:break-all}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:var(--panel);padding:.3rem .6rem;z-index:2}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
input,textarea,button{font:inherit;color:inherit}
input[type=text],input[type=password],input[type=number],textarea{width:100%;padding:.45rem .55rem;border:1px solid var(--line);border-radius:6px;background:var(--panel)}
input[aria-invalid=true],textarea[aria-invalid=true]{border-color:var(--danger);box-shadow:0 0 0 1px var(--danger)}
button{padding:.45rem .85rem;border:1px solid var(--line);border-radius:6px;background:var(--panel);cursor:pointer}
button:hover:not(:disabled){border-color:var(--accent)}
button:disabled{opacity:.5;cursor:not-allowed}
button.primary{background:var(--accent);border-color:var(--accent);color:var(--accent-text);font-weight:600}
button.danger{color:var(--danger);border-color:var(--danger)}
button.primary.danger,dialog button.danger{background:var(--danger);color:#fff}
.token-bar{display:flex;gap:1rem;align-items:flex-end;flex-wrap:wrap;background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem;margin-bottom:1rem}
.grow{flex:1 1 24rem}
.input-row{display:flex;gap:.4rem}.input-row input{flex:1}
.field{margin:.3rem 0}.field>label{display:block;font-weight:600;font-size:.9rem;margin-bottom:.15rem}
.field.check{display:flex;align-items:center;gap:.4rem;margin-bottom:1.6rem}.field.check label{font-weight:400;margin:0}
.hint{color:var(--muted);font-size:.85rem;margin:.2rem 0}
.field-error,.form-error{color:var(--danger);font-size:.88rem;margin:.25rem 0;font-weight:500}
.form-error{background:var(--err-bg);padding:.5rem .7rem;border-radius:6px}
.notice{background:var(--warn-bg);padding:.5rem .7rem;border-radius:6px}
.banner{padding:.6rem .8rem;border-radius:6px}.banner.error{background:var(--err-bg)}
.tabs{display:flex;gap:.25rem;border-bottom:1px solid var(--line)}
.tabs [role=tab]{border:1px solid transparent;border-bottom:none;border-radius:6px 6px 0 0;background:none;padding:.5rem 1.1rem;color:var(--muted);margin-bottom:-1px}
.tabs [role=tab][aria-selected=true]{background:var(--panel);border-color:var(--line);color:var(--text);font-weight:600}
[role=tabpanel]{background:var(--panel);border:1px solid var(--line);border-top:none;border-radius:0 0 8px 8px;padding:1rem 1.2rem 1.4rem}
fieldset{border:1px solid var(--line);border-radius:8px;margin:0 0 1rem;padding:.6rem 1rem .8rem}
legend{font-weight:700;padding:0 .3rem}
.limit-row{display:grid;grid-template-columns:7rem repeat(3,1fr);gap:.6rem;align-items:start}
.limit-unit{padding-top:1.9rem;font-weight:600;font-size:.9rem}
.limit label{font-weight:400!important;color:var(--muted)}
.secret-rows{list-style:none;padding:0;margin:.4rem 0}
.secret-row{display:grid;grid-template-columns:1fr 1.4fr auto;gap:.6rem;align-items:start;margin-bottom:.4rem}
.secret-row button{margin-top:1.6rem}
.presets{display:flex;flex-wrap:wrap;gap:.4rem;margin-top:.4rem}.presets button{font-size:.85rem;padding:.25rem .6rem}
.presets button[aria-pressed=true]{border-color:var(--accent);color:var(--accent);font-weight:600}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.8rem 0}
.admin-key{margin-bottom:1rem}
.minted{margin-bottom:1.2rem;border-bottom:1px solid var(--line);padding-bottom:1rem}
.warning{background:var(--warn-bg);padding:.5rem .7rem;border-radius:6px}
textarea#minted-token{word-break:break-all;resize:vertical}
.facts{display:grid;grid-template-columns:10rem 1fr;gap:.3rem 1rem;margin:.6rem 0}.facts dt{color:var(--muted)}.facts dd{margin:0}
.countdown{color:var(--muted)}
.chips{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:.3rem}.chips li{background:var(--code);border-radius:99px;padding:.05rem .6rem;font-size:.88rem}
.status-active{color:var(--ok);font-weight:700}.status-revoked{color:var(--danger);font-weight:700}
.quotas{list-style:none;padding:0;margin:0;display:grid;gap:.7rem}
.quota-head{display:flex;justify-content:space-between;gap:1rem;font-size:.9rem}.quota-head span:last-child{color:var(--muted)}
.bar{height:.6rem;background:var(--code);border-radius:99px;overflow:hidden;margin-top:.2rem}
.bar>span{display:block;height:100%;background:var(--accent);border-radius:99px}
.bar.full>span{background:var(--danger)}
dialog{border:1px solid var(--line);border-radius:10px;background:var(--panel);color:var(--text);max-width:28rem;padding:1rem 1.3rem}
dialog::backdrop{background:rgb(0 0 0 / .45)}
dialog h2{margin-top:0}
.transcript{list-style:none;padding:0;margin:1rem 0;display:flex;flex-direction:column;gap:.5rem;min-height:3rem}
.transcript li{padding:.5rem .75rem;border-radius:8px;max-width:90%;white-space:pre-wrap;word-wrap:break-word}
.transcript .user{align-self:flex-end;background:var(--accent);color:var(--accent-text)}
.transcript .assistant{align-self:flex-start;background:var(--code)}
.transcript .error{align-self:stretch;background:var(--err-bg);color:var(--danger);max-width:none}
.transcript .who{display:block;font-size:.75rem;opacity:.75;font-weight:600}
.transcript .streaming .text::after{content:"▍";animation:blink 1s steps(2) infinite}
@keyframes blink{50%{opacity:0}}
@media (prefers-reduced-motion:reduce){.transcript .streaming .text::after{animation:none}}
@media (max-width:40rem){.input-row{flex-wrap:wrap}.input-row input{flex-basis:100%}input[type=number]{padding-left:.4rem;padding-right:.2rem}.limit-row{grid-template-columns:repeat(3,1fr)}.limit-unit{grid-column:1/-1;padding:0}.secret-row{grid-template-columns:1fr}.secret-row button{margin-top:0}.facts{grid-template-columns:1fr}}
`;
