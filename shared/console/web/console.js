// smtp-vault console: one page that routes by location.pathname, so the
// bearer and re-auth tokens live in this script's memory only (never in
// storage, a cookie or the URL) and survive moving between pages. It
// builds the DOM with textContent, never with HTML strings.
'use strict';
(() => {
  const P = '/platform-admin';
  const TENANT = /^\/platform-admin\/tenants\/([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})\/smtp-credentials$/;
  const WARN_MS = 2 * 60 * 1000;

  const state = {
    config: null,
    token: null, tokenExp: 0, user: '', roles: [],
    reauth: null, // {token, expiresAt (ms, this browser's clock), windowMs}
    windowMs: 0, // the last re-auth window, for the texts that name it
    returnTo: null,
  };
  let view = null; // the current page: {stop()}

  // ------------------------------------------------------------- DOM
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const $ = (id) => document.getElementById(id);
  const main = () => $('main');

  function setPage(title, ...kids) {
    document.title = title + ' · smtp-vault console';
    main().replaceChildren(...kids.flat(Infinity).filter((k) => k));
    const h1 = main().querySelector('h1');
    if (h1) { h1.setAttribute('tabindex', '-1'); h1.focus(); }
  }

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d)) return '—';
    return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  }
  // fmtWindow names a re-auth window: "15 minutes", "25 seconds".
  function fmtWindow(ms) {
    const s = Math.round(ms / 1000);
    if (s < 120 && s % 60 !== 0) return s + (s === 1 ? ' second' : ' seconds');
    const m = Math.round(s / 60);
    return m + (m === 1 ? ' minute' : ' minutes');
  }
  function fmtDuration(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return String(Math.floor(s / 60)).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0');
  }
  // fmtAge says how long ago, in the largest unit that is not zero: a
  // backup minutes old reads in minutes, not "0 hours ago".
  function fmtAge(ms) {
    const min = Math.floor(Math.max(0, ms) / 60000);
    const n = (v, unit) => v + ' ' + unit + (v === 1 ? '' : 's') + ' ago';
    if (min < 1) return 'less than a minute ago';
    if (min < 60) return n(min, 'minute');
    if (min < 48 * 60) return n(Math.floor(min / 60), 'hour');
    return n(Math.floor(min / 1440), 'day');
  }
  function safeURL(u) {
    try { const x = new URL(u); return (x.protocol === 'https:' || x.protocol === 'http:') ? x.href : null; } catch { return null; }
  }

  // ---------------------------------------------------------- session
  function decodeJWT(tok) {
    try {
      const b = tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(decodeURIComponent(escape(atob(b))));
    } catch { return null; }
  }
  function setToken(tok, expiresIn) {
    const claims = decodeJWT(tok);
    if (!claims || !claims.sub) throw new Error('the identity provider returned an unreadable token');
    state.token = tok;
    state.tokenExp = claims.exp ? claims.exp * 1000 : Date.now() + (expiresIn || 3600) * 1000;
    state.user = claims.sub;
    const roles = claims[state.config.roles_claim];
    state.roles = Array.isArray(roles) ? roles : [];
    state.reauth = null;
  }
  const signedIn = () => !!state.token && Date.now() < state.tokenExp;
  const isAdmin = () => state.roles.includes('platform-admin');
  const reauthValid = () => !!state.reauth && Date.now() < state.reauth.expiresAt;
  // reauthHeld keeps a re-auth answer with its deadline on this browser's
  // clock: the token's window (its exp minus its iat, both the server's
  // clock) from when the request left, less a second, so a browser clock
  // that is off neither shortens nor stretches the view. Without a
  // readable token, expires_at is taken as it is.
  function reauthHeld(r, sent) {
    let windowMs = 0;
    try {
      const c = JSON.parse(atob(r.reauth_token.split('.')[0].replace(/-/g, '+').replace(/_/g, '/')));
      windowMs = (c.exp - c.iat) * 1000;
    } catch { /* not readable */ }
    if (!(windowMs > 0 && windowMs <= 15 * 60 * 1000)) windowMs = Date.parse(r.expires_at) - sent;
    state.windowMs = windowMs;
    return { token: r.reauth_token, expiresAt: sent + windowMs - 1000, windowMs };
  }
  function signOut() {
    state.token = null; state.tokenExp = 0; state.user = ''; state.roles = []; state.reauth = null;
    state.returnTo = null;
    navigate(P + '/sign-in');
  }
  // A 401 for the bearer token: back to sign-in, then to this page.
  function sessionExpired() {
    state.token = null; state.reauth = null;
    state.returnTo = location.pathname;
    navigate(P + '/sign-in', { expired: true });
  }

  // -------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message); this.status = status; this.code = code; this.retryAfter = retryAfter;
    }
  }
  async function api(method, path, opts = {}) {
    const headers = { Authorization: 'Bearer ' + state.token };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.reauth) {
      if (!reauthValid()) throw new ApiError(401, 'reauth_required', 'Confirm your password and code first.');
      headers['X-Reauth-Token'] = state.reauth.token;
    }
    let url = state.config.api_base + path;
    if (opts.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
      if ([...q].length) url += '?' + q;
    }
    let resp;
    try {
      resp = await fetch(url, {
        method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch {
      throw new ApiError(0, 'network', 'The API could not be reached. Check your connection and try again.');
    }
    if (resp.status === 204) return null;
    let data = null;
    try { data = await resp.json(); } catch { /* not JSON */ }
    if (resp.ok) return data;
    const code = data && data.error ? data.error.code : (resp.status === 401 ? 'unauthenticated' : 'error');
    const message = data && data.error ? data.error.message : (data && data.message) || resp.statusText;
    const retry = parseInt(resp.headers.get('Retry-After') || '', 10);
    const err = new ApiError(resp.status, code, message, isNaN(retry) ? null : retry);
    if (resp.status === 401 && code === 'reauth_required') state.reauth = null;
    if (resp.status === 401 && code === 'unauthenticated') sessionExpired();
    throw err;
  }
  // describe turns an API error into what the admin should know and do.
  function describe(err) {
    if (!(err instanceof ApiError)) return String(err && err.message || err);
    switch (err.status) {
      case 401:
        if (err.code === 'reauth_failed') return 'The password or the code is wrong.';
        if (err.code === 'reauth_required') return 'Your confirmation has expired. Confirm your password and code again.';
        return 'Your session has ended. Sign in again.';
      case 403: return 'Not allowed for your role.';
      case 404: return 'No credential is stored for this tenant.';
      case 409:
        if (err.code === 'rotation_cooldown') return 'This credential was changed moments ago. Try again in ' + (err.retryAfter || 'a few') + ' seconds.';
        return 'Another change of this credential is in progress. Try again shortly.';
      case 429: {
        let s = err.retryAfter;
        if (!s) { const m = /(\d+)\s*seconds?/.exec(err.message || ''); s = m ? m[1] : null; }
        return 'Too many attempts. Try again in ' + (s ? s + ' seconds' : 'a while') + '.';
      }
      case 503: return 'A service the console needs (Vault, MailU or the audit trail) is unavailable; nothing was changed. Try again later.';
      case 0: return err.message;
      default: return err.message || ('The request failed (' + err.status + ').');
    }
  }
  function showError(el, err) {
    el.textContent = describe(err);
    el.hidden = false;
  }

  // ---------------------------------------------------------- dialogs
  const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), textarea:not([disabled]), select:not([disabled]), [tabindex]:not([tabindex="-1"])';
  const openDialogs = new Set();

  // modal shows a dialog that keeps focus inside (Tab and Shift-Tab cycle),
  // closes on Escape when closable, and gives focus back on close.
  function modal(content, { labelledBy, closable = true, onClose } = {}) {
    const opener = document.activeElement;
    const dlg = h('dialog', { class: 'modal', 'aria-labelledby': labelledBy, 'aria-modal': 'true' }, content);
    let closed = false;
    const close = (why) => {
      if (closed) return;
      closed = true;
      openDialogs.delete(api_);
      if (dlg.open) dlg.close();
      dlg.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      else { const h1 = main().querySelector('h1'); if (h1) h1.focus(); }
      if (onClose) onClose(why);
    };
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); if (closable) close('cancel'); });
    dlg.addEventListener('close', () => close('closed'));
    dlg.addEventListener('keydown', (e) => {
      if (e.key !== 'Tab') return;
      const items = [...dlg.querySelectorAll(FOCUSABLE)].filter((x) => !x.hidden && x.offsetParent !== null);
      if (!items.length) { e.preventDefault(); return; }
      const first = items[0], last = items[items.length - 1];
      if (e.shiftKey && (document.activeElement === first || !dlg.contains(document.activeElement))) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && (document.activeElement === last || !dlg.contains(document.activeElement))) { e.preventDefault(); first.focus(); }
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = dlg.querySelector('[autofocus]') || dlg.querySelector(FOCUSABLE);
    if (first) first.focus();
    const api_ = { el: dlg, close };
    openDialogs.add(api_);
    return api_;
  }
  function closeAllDialogs() { for (const d of [...openDialogs]) d.close('navigate'); }

  // reauthenticate asks for password and TOTP code and resolves true once a
  // re-auth token is held, false when the admin cancels.
  function reauthenticate(why) {
    return new Promise((resolve) => {
      const err = h('p', { class: 'error', role: 'alert', hidden: true });
      const pw = h('input', { id: 'reauth-password', type: 'password', autocomplete: 'current-password', required: true, autofocus: true });
      const code = h('input', { id: 'reauth-code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}([0-9]{2})?', maxlength: '8', required: true, 'aria-describedby': 'reauth-code-hint' });
      const submit = h('button', { type: 'submit', id: 'reauth-submit' }, 'Confirm');
      let ok = false;
      const form = h('form', {
        id: 'reauth-form', novalidate: true,
        onsubmit: async (e) => {
          e.preventDefault();
          err.hidden = true;
          if (!pw.value || !/^[0-9]{6}([0-9]{2})?$/.test(code.value)) {
            err.textContent = 'Enter your password and the 6-digit code from your authenticator app.';
            err.hidden = false; (pw.value ? code : pw).focus(); return;
          }
          submit.disabled = true;
          try {
            const sent = Date.now();
            const r = await api('POST', '/reauth', { body: { password: pw.value, totp_code: code.value } });
            state.reauth = reauthHeld(r, sent);
            pw.value = ''; code.value = '';
            ok = true; dlg.close('done');
          } catch (ex) {
            if (ex.status === 401 && ex.code === 'unauthenticated') return;
            showError(err, ex); code.value = ''; code.focus();
          } finally { submit.disabled = false; }
        },
      },
      h('h2', { id: 'reauth-title' }, 'Confirm it is you'),
      h('p', { id: 'reauth-why' }, why || 'Enter your password and the code from your authenticator app.' + (state.windowMs ? ' The confirmation lasts ' + fmtWindow(state.windowMs) + '.' : '')),
      h('label', { for: 'reauth-password' }, 'Password'), pw,
      h('label', { for: 'reauth-code' }, 'Authenticator code'), code,
      h('p', { class: 'hint', id: 'reauth-code-hint' }, '6 digits, from your authenticator app.'),
      err,
      h('div', { class: 'actions' },
        submit,
        h('button', { type: 'button', class: 'secondary', id: 'reauth-cancel', onclick: () => dlg.close('cancel') }, 'Cancel')));
      const dlg = modal(form, { labelledBy: 'reauth-title', onClose: () => resolve(ok) });
    });
  }

  // confirmStep shows what is about to happen with its fields; resolves the
  // fields' values, or null when cancelled.
  function confirmStep({ title, text, fields = [], confirmLabel, danger }) {
    return new Promise((resolve) => {
      const err = h('p', { class: 'error', role: 'alert', hidden: true });
      const inputs = fields.map((f) => f.multiline
        ? h('textarea', { id: 'confirm-' + f.name, required: f.required, maxlength: f.max || '500' })
        : h('input', { id: 'confirm-' + f.name, required: f.required, maxlength: f.max || '500', pattern: f.pattern }));
      let values = null;
      const form = h('form', {
        id: 'confirm-form', novalidate: true,
        onsubmit: (e) => {
          e.preventDefault();
          const v = {};
          for (let i = 0; i < fields.length; i++) {
            const val = inputs[i].value.trim();
            if (fields[i].required && !val) { err.textContent = fields[i].label + ' is required.'; err.hidden = false; inputs[i].focus(); return; }
            if (fields[i].check && val && !fields[i].check.test(val)) { err.textContent = fields[i].hint; err.hidden = false; inputs[i].focus(); return; }
            v[fields[i].name] = val;
          }
          values = v; dlg.close('done');
        },
      },
      h('h2', { id: 'confirm-title' }, title),
      h('p', {}, text),
      fields.map((f, i) => [h('label', { for: 'confirm-' + f.name }, f.label), inputs[i], f.hint ? h('p', { class: 'hint' }, f.hint) : null]),
      err,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', id: 'confirm-submit', class: danger ? 'danger' : null }, confirmLabel),
        h('button', { type: 'button', class: 'secondary', id: 'confirm-cancel', onclick: () => dlg.close('cancel') }, 'Cancel')));
      const dlg = modal(form, { labelledBy: 'confirm-title', onClose: () => resolve(values) });
    });
  }

  async function ensureReauth(why) {
    return reauthValid() || reauthenticate(why);
  }

  // clipboard copies text, with the old execCommand route where the
  // asynchronous clipboard is refused.
  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); return true; }
    } catch { /* fall back */ }
    const ta = h('textarea', { class: 'sr-only', readonly: true, 'aria-hidden': 'true' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.value = '';
    ta.remove();
    return ok;
  }

  // The password copied last: clearClipboard empties the clipboard when
  // the view that copied it closes, where the browser lets a page write it
  // then (focused, asynchronous clipboard). It reads the clipboard first
  // only where that is already allowed (no prompt), to leave something
  // copied since alone; otherwise it clears it, as the copy button said.
  let copiedSecret = null;
  async function copySecret(text) {
    const ok = await copyText(text);
    if (ok) copiedSecret = text;
    return ok;
  }
  async function clearClipboard() {
    const secret = copiedSecret;
    copiedSecret = null;
    if (!secret || !navigator.clipboard || !window.isSecureContext) return;
    try {
      let readable = false;
      try { readable = (await navigator.permissions.query({ name: 'clipboard-read' })).state === 'granted'; } catch { /* unknown permission */ }
      if (readable && (await navigator.clipboard.readText()) !== secret) return;
      await navigator.clipboard.writeText('');
    } catch { /* not allowed now (no focus): nothing more a page can do */ }
  }
  window.addEventListener('pagehide', () => { clearClipboard(); });

  // ---------------------------------------------------------- routing
  function navigate(path, opts = {}) {
    if (location.pathname !== path) history.pushState({}, '', path);
    render(opts);
  }
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[data-route]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(a.getAttribute('href'));
  });
  window.addEventListener('popstate', () => render());

  function render(opts = {}) {
    if (view && view.stop) view.stop();
    view = null;
    closeAllDialogs();
    const path = location.pathname;
    const signed = signedIn();
    $('nav').hidden = !signed || !isAdmin();
    $('who').hidden = !signed;
    $('who-name').textContent = signed ? state.user + ' (' + (state.roles.join(', ') || 'no role') + ')' : '';
    if (path === P + '/sign-in') return signInView(opts);
    if (!signed) {
      state.returnTo = path;
      history.replaceState({}, '', P + '/sign-in');
      return signInView(opts);
    }
    const m = TENANT.exec(path);
    if (path === P + '/smtp-credentials') view = isAdmin() ? overviewView() : notForRoleView();
    else if (m) view = viewingView(m[1]);
    else setPage('Not found', h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: P + '/smtp-credentials', 'data-route': true }, 'Go to the overview')));
  }

  function afterSignIn() {
    const to = state.returnTo && (state.returnTo === P + '/smtp-credentials' || TENANT.test(state.returnTo)) ? state.returnTo : null;
    state.returnTo = null;
    navigate(to || (isAdmin() ? P + '/smtp-credentials' : P + '/sign-in'));
  }

  // ---------------------------------------------------------- sign-in
  function signInView(opts) {
    const cfg = state.config;
    const err = h('p', { class: 'error', role: 'alert', id: 'sign-in-error', hidden: true });
    const intro = [];
    if (opts.expired) intro.push(h('p', { class: 'banner warning', role: 'alert' }, 'Your session has ended. Sign in again to go back to the page you were on.'));
    if (signedIn()) {
      intro.push(h('p', { class: 'notice' }, 'You are signed in as ' + state.user + '.',
        isAdmin() ? null : ' Your role cannot see the overview: open a tenant below.'));
    }
    let body;
    if (cfg.sign_in_mode === 'local') {
      const list = h('datalist', { id: 'sign-in-users' });
      fetch(cfg.sign_in_url, { cache: 'no-store', credentials: 'omit' }).then((r) => r.ok ? r.json() : null).then((d) => {
        for (const u of (d && d.users) || []) list.append(h('option', { value: u.name }, u.name + ' (' + u.roles.join(', ') + ')'));
      }).catch(() => {});
      const user = h('input', { id: 'sign-in-user', list: 'sign-in-users', autocomplete: 'username', required: true, 'aria-describedby': 'sign-in-hint' });
      const pw = h('input', { id: 'sign-in-password', type: 'password', autocomplete: 'current-password', required: true });
      const submit = h('button', { type: 'submit', id: 'sign-in-submit' }, 'Sign in');
      body = h('form', {
        class: 'panel', id: 'sign-in-form', novalidate: true,
        onsubmit: async (e) => {
          e.preventDefault();
          err.hidden = true;
          if (!user.value || !pw.value) { err.textContent = 'Enter a demo admin and their password.'; err.hidden = false; return; }
          submit.disabled = true;
          try {
            const r = await fetch(cfg.sign_in_url, {
              method: 'POST', cache: 'no-store', credentials: 'omit',
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ user: user.value, password: pw.value }),
            });
            const d = await r.json().catch(() => null);
            if (!r.ok) throw new Error(d && d.error ? d.error.message : 'Sign-in failed (' + r.status + ').');
            pw.value = '';
            setToken(d.access_token, d.expires_in);
            afterSignIn();
          } catch (ex) {
            err.textContent = ex.message; err.hidden = false; pw.focus();
          } finally { submit.disabled = false; }
        },
      },
      h('p', { class: 'hint', id: 'sign-in-hint' }, 'Local stack: the local issuer signs you in as a demo admin. Their names and passwords are in .local/dev.env (ADMIN_USER, ADMIN_PASSWORD; SUPPORT_USER, SUPPORT_PASSWORD).'),
      h('label', { for: 'sign-in-user' }, 'Demo admin'), user, list,
      h('label', { for: 'sign-in-password' }, 'Password'), pw,
      err,
      h('div', { class: 'actions' }, submit));
    } else if (cfg.sign_in_url) {
      const button = h('button', { type: 'button', id: 'sign-in-hosted', onclick: () => hostedSignIn(cfg, err, button) }, 'Sign in with your identity provider');
      body = h('div', { class: 'panel' },
        h('p', {}, 'Sign in with your organisation\'s identity provider, in a pop-up window; this page stays as it is.'),
        err,
        h('div', { class: 'actions' }, button));
    } else {
      body = h('p', { class: 'error', role: 'alert' }, 'Sign-in is not configured: set the ConsoleSignInUrl parameter of the stack.');
    }
    const open = signedIn() ? tenantJump() : null;
    setPage('Sign in', h('h1', {}, 'Sign in'), intro, signedIn() ? null : body, open);
  }

  // hostedSignIn runs the OAuth 2.0 authorization code flow with PKCE
  // (S256) in a pop-up. The verifier and state live in this closure only;
  // callback.js hands back the code from the pop-up (same origin,
  // postMessage), and the code is redeemed here. No token is ever in a
  // URL and nothing is stored.
  async function hostedSignIn(cfg, err, button) {
    const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const fail = (text) => { err.textContent = text; err.hidden = false; button.disabled = false; button.focus(); };
    err.hidden = true;
    button.disabled = true;
    const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
    const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
    const nonce = b64url(crypto.getRandomValues(new Uint8Array(16)));
    const redirect = location.origin + P + '/callback';
    const u = new URL(cfg.sign_in_url, location.href);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: cfg.client_id, redirect_uri: redirect, scope: 'openid', state: nonce, code_challenge: challenge, code_challenge_method: 'S256' })) u.searchParams.set(k, v);
    const popup = window.open(u.href, 'smtp-vault-sign-in', 'popup,width=480,height=640');
    if (!popup) { fail('The browser blocked the sign-in window: allow pop-ups for this console, then try again.'); return; }
    let watch = null, finished = false;
    const done = () => { finished = true; clearInterval(watch); window.removeEventListener('message', onMessage); };
    // The pop-up closes itself after posting the code: give that message a
    // moment before calling a closed window a cancelled sign-in.
    watch = setInterval(() => {
      if (popup.closed) { clearInterval(watch); setTimeout(() => { if (!finished) { done(); fail('The sign-in window was closed before you signed in.'); } }, 1000); }
    }, 500);
    async function onMessage(ev) {
      if (ev.origin !== location.origin || ev.source !== popup || !ev.data || ev.data.type !== 'smtp-vault-sign-in') return;
      done();
      if (ev.data.state !== nonce || !ev.data.code) { fail(ev.data.error ? 'The identity provider refused the sign-in (' + ev.data.error + ').' : 'The sign-in answer did not match this page; try again.'); return; }
      try {
        const r = await fetch(cfg.token_url, {
          method: 'POST', cache: 'no-store', credentials: 'omit',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'authorization_code', code: ev.data.code, redirect_uri: redirect, client_id: cfg.client_id, code_verifier: verifier }),
        });
        const d = await r.json().catch(() => null);
        if (!r.ok || !d || !d.access_token) throw new Error('The identity provider did not issue a token (' + r.status + ').');
        setToken(d.access_token, d.expires_in || 3600);
        button.disabled = false;
        afterSignIn();
      } catch (ex) { fail(ex.message); }
    }
    window.addEventListener('message', onMessage);
  }

  function tenantJump() {
    const err = h('p', { class: 'error', role: 'alert', hidden: true });
    const id = h('input', { id: 'open-tenant', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'open-tenant-hint' });
    return h('section', { class: 'panel', 'aria-labelledby': 'open-title' },
      h('h2', { id: 'open-title' }, 'Open a tenant'),
      h('form', {
        class: 'inline', onsubmit: (e) => {
          e.preventDefault();
          const p = P + '/tenants/' + id.value.trim().toLowerCase() + '/smtp-credentials';
          if (!TENANT.test(p)) { err.textContent = 'Enter a tenant id (a UUID).'; err.hidden = false; id.focus(); return; }
          navigate(p);
        },
      }, h('label', { for: 'open-tenant' }, 'Tenant id'), id, h('button', { type: 'submit' }, 'Open')),
      h('p', { class: 'hint', id: 'open-tenant-hint' }, 'The tenant\'s SMTP credentials, after you confirm your password and code.'),
      err);
  }

  // notForRoleView is the overview's address for a role that cannot list
  // tenants: one message and what the role can do, without asking the API.
  function notForRoleView() {
    const roles = !state.roles.length ? 'no role' : 'the ' + state.roles.join(', ') + (state.roles.length > 1 ? ' roles' : ' role');
    setPage('Overview not available',
      h('h1', {}, 'The overview is for platform admins'),
      h('p', { class: 'notice', id: 'not-for-role' }, 'You are signed in as ' + state.user + ' with ' + roles +
        ', which cannot list tenants or rotate credentials. You can open one tenant\'s SMTP credentials by its id.'),
      tenantJump());
  }

  // --------------------------------------------------------- overview
  const FILTERS = [['', 'All'], ['overdue', 'Overdue'], ['due_soon', 'Due within 7 days'], ['compromised', 'Compromised'], ['failing', 'Rotation failing']];
  const STATUS_LABEL = { ok: 'OK', overdue: 'Overdue', due_soon: 'Due soon', compromised: 'Compromised', failing: 'Rotation failing' };
  const PER_PAGE = 20;
  const SEARCH_PAUSE_MS = 300;

  function overviewView() {
    let alive = true;
    const q = { status: '', q: '', page: 1 };
    const listErr = h('p', { class: 'error', role: 'alert', hidden: true, id: 'list-error' });
    const status = h('p', { class: 'status-line', role: 'status', id: 'list-status' });
    const tbody = h('tbody', { id: 'tenant-rows' });
    const pageInfo = h('span', { id: 'page-info' });
    const prev = h('button', { type: 'button', class: 'secondary', id: 'page-prev', onclick: () => { q.page--; load(); } }, 'Previous');
    const next = h('button', { type: 'button', class: 'secondary', id: 'page-next', onclick: () => { q.page++; load(); } }, 'Next');
    // Search as you type: a listing once typing pauses (SEARCH_PAUSE_MS),
    // at once on Enter; load() shows only the latest answer.
    let typing = null;
    const searchNow = () => {
      clearTimeout(typing); typing = null;
      const v = search.value.trim();
      if (v === q.q) return;
      q.q = v; q.page = 1; load();
    };
    const search = h('input', {
      id: 'search', type: 'search', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'search-hint',
      oninput: () => { clearTimeout(typing); typing = setTimeout(searchNow, SEARCH_PAUSE_MS); },
    });
    const health = h('div', { id: 'health-body' }, 'Loading…');
    const progress = h('div', { id: 'bulk-progress', role: 'status', 'aria-live': 'polite' });
    const bulkErr = h('p', { class: 'error', role: 'alert', hidden: true, id: 'bulk-error' });
    const bulkBtn = h('button', { type: 'button', id: 'rotate-overdue', onclick: () => bulk() }, 'Rotate overdue…');
    let poll = null;

    let seq = 0; // only the latest listing is shown
    async function load() {
      const mine = ++seq;
      listErr.hidden = true;
      status.textContent = 'Loading…';
      try {
        const r = await api('GET', '/smtp-credentials', { query: { status: q.status, q: q.q, page: q.page, per_page: PER_PAGE } });
        if (!alive || mine !== seq) return;
        const pages = Math.max(1, Math.ceil(r.total / r.per_page));
        tbody.replaceChildren(...r.credentials.map(row));
        if (!r.credentials.length) tbody.append(h('tr', {}, h('td', { colspan: '5' }, 'No credentials match.')));
        pageInfo.textContent = 'Page ' + r.page + ' of ' + pages;
        prev.disabled = r.page <= 1; next.disabled = r.page >= pages;
        status.textContent = r.total + (r.total === 1 ? ' credential' : ' credentials') + (q.status ? ' (' + FILTERS.find((f) => f[0] === q.status)[1].toLowerCase() + ')' : '') + (q.q ? ' matching “' + q.q + '”' : '') + '.';
      } catch (ex) {
        if (!alive || mine !== seq) return;
        status.textContent = '';
        tbody.replaceChildren();
        showError(listErr, ex);
      }
    }
    function row(c) {
      const due = c.days_until_due <= 0 ? 'overdue by ' + (-c.days_until_due) + (c.days_until_due === -1 ? ' day' : ' days') : c.days_until_due + (c.days_until_due === 1 ? ' day' : ' days');
      const marks = [h('span', { class: 'badge ' + c.status }, STATUS_LABEL[c.status] || c.status)];
      if (c.rotation_state === 'pending') marks.push(' ', h('span', { class: 'badge pending' }, 'Rotation in progress'));
      if (c.rotation_failing) marks.push(' ', h('span', { class: 'badge failing' }, 'Rotation failing'));
      return h('tr', { 'data-tenant': c.tenant_id },
        h('td', { 'data-label': 'Tenant' }, h('a', { href: P + '/tenants/' + c.tenant_id + '/smtp-credentials', 'data-route': true, class: 'mono' }, c.tenant_id)),
        h('td', { 'data-label': 'Domain / username' }, c.domain ? [c.domain, h('br'), h('span', { class: 'hint' }, c.username)] : c.username),
        h('td', { 'data-label': 'Last rotation' }, fmtTime(c.last_rotated)),
        h('td', { 'data-label': 'Due in' }, due),
        h('td', { 'data-label': 'State' }, marks));
    }
    async function loadHealth() {
      try {
        const r = await api('GET', '/vault/health');
        if (!alive) return;
        const vaultErrs = (r.errors || []).filter((e) => !e.startsWith('backups:'));
        const backupErrs = (r.errors || []).filter((e) => e.startsWith('backups:'));
        let seal;
        if (vaultErrs.length && !r.sealed) seal = h('span', { class: 'badge red' }, 'Unknown: Vault could not be asked');
        else seal = r.sealed ? h('span', { class: 'badge red' }, 'Sealed') : h('span', { class: 'badge green' }, 'Unsealed');
        const colour = r.backup_colour || 'none';
        const age = r.last_backup ? fmtAge(r.backup_age_ns / 1e6) + ' (' + fmtTime(r.last_backup.time) + ')' : 'none yet';
        // replaceChildren would print a null as text: only what is there.
        health.replaceChildren(...[h('dl', { class: 'fields' },
          h('dt', {}, 'Vault'), h('dd', { id: 'health-seal' }, seal, r.version ? ' version ' + r.version : ''),
          h('dt', {}, 'Last backup'), h('dd', { id: 'health-backup' }, h('span', { class: 'badge ' + colour }, colour === 'none' ? 'None' : colour[0].toUpperCase() + colour.slice(1)), ' ', age)),
        (r.errors || []).length ? h('p', { class: 'banner warning', id: 'health-errors' }, 'Could not read: ' + [...vaultErrs, ...backupErrs].join('; ')) : null].filter(Boolean));
      } catch (ex) {
        if (!alive) return;
        health.replaceChildren(h('p', { class: 'error', role: 'alert' }, describe(ex)));
      }
    }
    // bulk asks for a reason, re-auth and a confirmation, then follows the
    // queued tenants in the overview until each left the overdue list.
    async function bulk() {
      bulkErr.hidden = true;
      let overdue;
      try { overdue = (await api('GET', '/smtp-credentials', { query: { status: 'overdue', per_page: 1 } })).total; } catch (ex) { showError(bulkErr, ex); return; }
      if (!overdue) { progress.replaceChildren(h('p', {}, 'No credential is overdue.')); return; }
      const v = await confirmStep({
        title: 'Rotate ' + overdue + ' overdue ' + (overdue === 1 ? 'credential' : 'credentials') + '?',
        text: 'Each tenant gets a new MailU admin password; the rotations run in the background and are audited one by one.',
        fields: [{ name: 'reason', label: 'Reason (for the audit trail)', required: true, multiline: true }],
        confirmLabel: 'Rotate overdue',
      });
      if (!v || !alive) return;
      if (!(await ensureReauth('Confirm your password and code to rotate the overdue credentials.')) || !alive) return;
      let r;
      try { r = await api('POST', '/smtp-credentials/rotate-overdue', { reauth: true, body: { reason: v.reason } }); } catch (ex) { showError(bulkErr, ex); return; }
      follow(r);
    }
    function follow(r) {
      const ids = r.tenant_ids || [];
      const bar = h('progress', { id: 'bulk-bar', max: String(ids.length || 1), value: '0' });
      const summary = h('p', { id: 'bulk-summary' });
      const items = new Map(ids.map((id) => [id, h('li', { 'data-tenant': id }, h('span', { class: 'mono' }, id), ': ', h('span', { class: 'outcome' }, 'queued'))]));
      progress.replaceChildren(h('label', { for: 'bulk-bar' }, 'Bulk rotation progress'), bar, summary, h('ul', { class: 'results', id: 'bulk-results' }, [...items.values()]));
      const started = Date.now();
      const tick = async () => {
        let still = new Map();
        try {
          for (let page = 1; ; page++) {
            const o = await api('GET', '/smtp-credentials', { query: { status: 'overdue', page, per_page: 100 } });
            for (const c of o.credentials) still.set(c.tenant_id, c);
            if (page * o.per_page >= o.total) break;
          }
        } catch (ex) { if (alive) showError(bulkErr, ex); still = null; }
        if (!alive) return;
        let done = 0, failing = 0;
        if (still) {
          for (const [id, li] of items) {
            const c = still.get(id);
            const out = li.querySelector('.outcome');
            if (!c) { out.textContent = 'rotated'; done++; } else if (c.rotation_failing) { out.textContent = 'rotation failing'; failing++; } else out.textContent = c.rotation_state === 'pending' ? 'rotating' : 'queued';
          }
          bar.value = done + failing;
          summary.textContent = done + ' of ' + ids.length + ' rotated' + (failing ? ', ' + failing + ' failing' : '') + (r.failed ? ', ' + r.failed + ' not queued' : '') + '.';
        }
        if (done + failing >= ids.length || Date.now() - started > 15 * 60 * 1000) { poll = null; load(); return; }
        poll = setTimeout(tick, 2000);
      };
      tick();
    }

    const filters = h('fieldset', { class: 'filters', id: 'filters' }, h('legend', {}, 'Show'),
      FILTERS.map(([value, label]) => h('label', {}, h('input', {
        type: 'radio', name: 'status', value, checked: value === q.status, id: 'filter-' + (value || 'all'),
        onchange: () => { q.status = value; q.page = 1; load(); },
      }), label)));
    setPage('SMTP credentials',
      h('h1', {}, 'SMTP credentials'),
      h('section', { class: 'panel', 'aria-labelledby': 'health-title', id: 'health' }, h('h2', { id: 'health-title' }, 'Vault health'), health),
      h('section', { class: 'panel', 'aria-labelledby': 'list-title' },
        h('h2', { id: 'list-title' }, 'Tenants'),
        h('form', {
          role: 'search', class: 'inline', id: 'search-form',
          onsubmit: (e) => { e.preventDefault(); searchNow(); },
        }, h('label', { for: 'search' }, 'Search by tenant id or domain'), search, h('button', { type: 'submit' }, 'Search'),
        h('p', { class: 'hint', id: 'search-hint' }, 'Results update as you type.')),
        filters,
        listErr, status,
        h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: 'tenants' },
          h('caption', { class: 'sr-only' }, 'Tenants and the rotation of their SMTP admin credentials'),
          h('thead', {}, h('tr', {}, ['Tenant', 'Domain / username', 'Last rotation', 'Due in', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
          tbody)),
        h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, pageInfo, next)),
      h('section', { class: 'panel', 'aria-labelledby': 'bulk-title' },
        h('h2', { id: 'bulk-title' }, 'Bulk rotation'),
        h('p', {}, 'Rotate every credential whose last rotation is 180 days old or more.'),
        bulkBtn, bulkErr, progress),
      tenantJump());
    load();
    loadHealth();
    return { stop() { alive = false; if (poll) clearTimeout(poll); clearTimeout(typing); } };
  }

  // ------------------------------------------------------ audit trail
  const AUDIT_PER_PAGE = 20;
  const FIELD = { password: 'password', username: 'username' };
  const TRIGGER = { manual: 'by hand', schedule: 'on schedule', bulk: 'in a bulk rotation of the overdue', store: 'when stored', resume: 'finishing an interrupted change' };
  const STORE_ACTION = { created: 'Stored the credential', updated: 'Updated the stored credential', replaced: 'Replaced the stored credential', unchanged: 'Stored the credential again (unchanged)', resumed: 'Finished an interrupted store', endpoint_changed: 'Finished an interrupted move to new endpoints' };
  const PURPOSE = { store: 'for a store', rotate: 'for a rotation', endpoint: 'for a move to new endpoints', reset: 'for an emergency reset' };

  // eventWords says what an audit event records, in words.
  function eventWords(e) {
    const d = e.details || {};
    switch (e.event) {
      case 'smtp_credentials_stored': return STORE_ACTION[d.action] || 'Stored the credential';
      case 'smtp_credentials_accessed': return 'Opened the credential';
      case 'smtp_credentials_viewed': return 'Revealed the ' + (FIELD[d.field] || 'credential');
      case 'smtp_credentials_copied': return 'Copied the ' + (FIELD[d.field] || 'credential');
      case 'smtp_credentials_rotated': return 'Rotated the password';
      case 'smtp_credentials_emergency_reset': return 'Emergency reset';
      case 'smtp_credentials_recovered': return 'Recovered after a server loss';
      case 'credential_compromise_response': return 'Compromise response' + (d.phase === 'finished' ? ' finished' : d.phase === 'started' ? ' started' : '');
      case 'vault_restored_from_backup': return 'Restored from a backup';
      case 'smtp_credentials_rewrapped': return 'Re-encrypted with a new master key';
      case 'smtp_credentials_change_started': return 'Began a password change';
      case 'smtp_endpoint_changed': return 'Moved to a new mail server or MailU API';
      case 'admin_reauthenticated': return 'Confirmed password and code';
      case 'reauth_locked': return 'Locked out after wrong codes';
      case 'authentication_failed': return 'Refused: not signed in';
      case 'authorization_denied': return 'Refused: not allowed for the role';
      case 'request_rejected': return 'Refused a request that was not valid';
      case 'action_failed': return 'An action failed';
      case 'audit_trail_queried': return 'Read this activity list';
      case 'audit_chain_verified': return 'Verified the audit trail';
      default: return e.event.replace(/_/g, ' ');
    }
  }
  // eventDetails: the event's context (field, reason, incident, trigger,
  // hosts) in words; the trail's own paging numbers are left out.
  function eventDetails(e) {
    const d = e.details || {};
    const out = [];
    if (d.incident_id) out.push('incident ' + d.incident_id);
    if (d.trigger && e.event !== 'action_failed') out.push(TRIGGER[d.trigger] || 'trigger ' + d.trigger);
    if (d.action && e.event === 'action_failed') out.push('while trying to ' + String(d.action).replace(/_/g, ' '));
    if (d.code) out.push('error ' + d.code);
    if (d.purpose) out.push(PURPOSE[d.purpose] || d.purpose);
    if (d.compromised_version) out.push('version ' + d.compromised_version + ' marked compromised');
    if (d.served === 'pending') out.push('the new password of a change in progress');
    if (d.tenants !== undefined) out.push(d.tenants + (d.tenants === 1 ? ' tenant' : ' tenants'));
    if (d.old_smtp_host || d.new_smtp_host) out.push('mail server ' + (d.old_smtp_host ? d.old_smtp_host + ' → ' : 'now ') + d.new_smtp_host);
    if (d.old_mailu_api_host || d.new_mailu_api_host) out.push('MailU API ' + (d.old_mailu_api_host ? d.old_mailu_api_host + ' → ' : 'now ') + d.new_mailu_api_host);
    if (d.rotated !== undefined) out.push(d.rotated ? 'password rotated' : 'password kept');
    if (d.failures) out.push(d.failures + ' failed attempts');
    if (d.retry_after_seconds) out.push('retry after ' + d.retry_after_seconds + ' s');
    if (d.resumed) out.push('resumed after an interruption');
    if (d.reason) out.push('reason: “' + d.reason + '”');
    return out.join('; ');
  }
  // foldTrailReads folds each run of audit_trail_queried (this list being
  // read, by this page among others) into one row, so what people did
  // with the credential is not buried under the reads of the list.
  function foldTrailReads(events) {
    const rows = [];
    const add = (list, v) => { if (v && !list.includes(v)) list.push(v); };
    for (const e of events) {
      const last = rows[rows.length - 1];
      if (e.event === 'audit_trail_queried' && last && last.event.event === 'audit_trail_queried') {
        last.count++; last.first = e.timestamp;
        add(last.users, e.user_id); add(last.ips, e.ip);
        continue;
      }
      const row = { event: e, count: 1, first: e.timestamp, users: [], ips: [] };
      add(row.users, e.user_id); add(row.ips, e.ip);
      rows.push(row);
    }
    return rows;
  }

  // ---------------------------------------------------------- viewing
  function viewingView(tenantID) {
    let alive = true;
    let cred = null; // the retrieved credential, with its password
    let shown = null; // the re-auth it was read with: {expiresAt, windowMs}
    let timer = null;
    let revealed = false;
    const base = '/tenants/' + tenantID + '/smtp-credentials';
    const secretBox = h('div', { id: 'secret' });
    const secretErr = h('p', { class: 'error', role: 'alert', hidden: true, id: 'secret-error' });
    const auditBody = h('tbody', { id: 'audit-rows' });
    const auditInfo = h('span', { id: 'audit-page' });
    const auditErr = h('p', { class: 'error', role: 'alert', hidden: true, id: 'audit-error' });
    const actionMsg = h('div', { id: 'action-result', role: 'status', 'aria-live': 'polite' });
    const actionErr = h('p', { class: 'error', role: 'alert', hidden: true, id: 'action-error' });
    let auditPage = 1;
    const auditPrev = h('button', { type: 'button', class: 'secondary', id: 'audit-prev', onclick: () => loadAudit(auditPage - 1) }, 'Newer');
    const auditNext = h('button', { type: 'button', class: 'secondary', id: 'audit-next', onclick: () => loadAudit(auditPage + 1) }, 'Older');

    // forget removes the secret from the page and from memory.
    function forget() {
      if (timer) clearInterval(timer);
      timer = null;
      cred = null; revealed = false;
      secretBox.replaceChildren();
      clearClipboard();
    }
    function locked(text) {
      forget();
      secretBox.replaceChildren(
        h('p', {}, text),
        h('button', { type: 'button', id: 'unlock', onclick: () => unlock() }, 'Confirm password and code to view'));
    }
    async function unlock() {
      secretErr.hidden = true;
      const closes = state.windowMs ? ' The view closes after ' + fmtWindow(state.windowMs) + '.' : ' The view closes when your confirmation runs out.';
      if (!(await ensureReauth('Confirm your password and code to view this tenant\'s SMTP credentials.' + closes)) || !alive) {
        if (alive && !cred) locked('The credential is shown only after you confirm your password and code.');
        return;
      }
      try {
        const held = state.reauth;
        const r = await api('GET', base, { reauth: true });
        if (!alive) return;
        cred = r;
        shown = held;
        show();
        loadAudit(1);
      } catch (ex) {
        if (!alive) return;
        showError(secretErr, ex);
        if (ex.code === 'reauth_required') locked('Your confirmation has expired.');
      }
    }
    async function record(event, field) {
      await api('POST', base + '/events', { reauth: true, body: { event, field } });
      loadAudit(1);
    }
    function show() {
      // A read-only field labelled by its <label>: screen readers announce
      // "Password" and, while masked, a password field (the value is then
      // the mask, never the password).
      const mask = '••••••••••••';
      const pw = h('input', { class: 'secret mono', id: 'password', type: 'password', readonly: true, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'password-state' });
      pw.value = mask;
      const pwState = h('span', { class: 'sr-only', id: 'password-state' }, 'Hidden');
      const reveal = h('button', { type: 'button', class: 'secondary', id: 'reveal' }, 'Reveal password');
      const hide = h('button', { type: 'button', class: 'secondary', id: 'hide', hidden: true }, 'Hide password');
      const copiedPw = h('span', { class: 'copied', role: 'status', id: 'copied-password' });
      const copiedUser = h('span', { class: 'copied', role: 'status', id: 'copied-username' });
      reveal.addEventListener('click', async () => {
        secretErr.hidden = true;
        try { await record('smtp_credentials_viewed', 'password'); } catch (ex) { showError(secretErr, ex); return; }
        if (!cred) return;
        pw.type = 'text'; pw.value = cred.password; pwState.textContent = 'Shown';
        revealed = true; reveal.hidden = true; hide.hidden = false; hide.focus();
      });
      hide.addEventListener('click', () => {
        pw.type = 'password'; pw.value = mask; pwState.textContent = 'Hidden';
        revealed = false; hide.hidden = true; reveal.hidden = false; reveal.focus();
      });
      const copier = (field, out) => async () => {
        secretErr.hidden = true; out.textContent = '';
        try { await record('smtp_credentials_copied', field); } catch (ex) { showError(secretErr, ex); return; }
        if (!cred) return;
        const ok = field === 'password' ? await copySecret(cred.password) : await copyText(cred[field]);
        out.textContent = !ok ? 'Copying failed: reveal it and copy it by hand.' : field === 'password' ? 'Copied; the clipboard is cleared when the view closes.' : 'Copied';
        setTimeout(() => { if (out.isConnected) out.textContent = ''; }, 4000);
      };
      const web = safeURL(cred.webmail_url);
      const next = Date.parse(cred.next_rotation);
      const days = isNaN(next) ? null : Math.ceil((next - Date.now()) / 864e5);
      const compromise = cred.compromise
        ? h('span', {}, h('span', { class: 'badge compromised' }, 'Compromised'), ' an earlier password (KV version ' + cred.compromise.kv_version + ') by incident ' + cred.compromise.incident_id + ' on ' + fmtTime(cred.compromise.at))
        : 'none';
      const countdown = h('span', { class: 'countdown', id: 'countdown', role: 'timer', 'aria-live': 'off' });
      const warning = h('p', { class: 'banner warning', role: 'alert', id: 'expiry-warning', hidden: true });
      secretBox.replaceChildren(
        h('p', { id: 'view-window' }, 'The view closes in ', countdown, ', ' + fmtWindow(shown.windowMs) + ' after you confirmed.'),
        warning,
        h('dl', { class: 'fields' },
          h('dt', {}, 'Username'), h('dd', {}, h('code', { id: 'username' }, cred.username),
            h('button', { type: 'button', class: 'secondary', id: 'copy-username', onclick: copier('username', copiedUser) }, 'Copy username'), copiedUser),
          h('dt', {}, h('label', { for: 'password' }, 'Password')), h('dd', {}, pw, pwState, reveal, hide,
            h('button', { type: 'button', class: 'secondary', id: 'copy-password', onclick: copier('password', copiedPw) }, 'Copy password'), copiedPw),
          h('dt', {}, 'Webmail'), h('dd', {}, web ? h('a', { href: web, target: '_blank', rel: 'noopener noreferrer', id: 'webmail' }, web) : '—'),
          h('dt', {}, 'Last rotated'), h('dd', { id: 'last-rotated' }, fmtTime(cred.last_rotated)),
          h('dt', {}, 'Next rotation'), h('dd', { id: 'next-rotation' }, fmtTime(cred.next_rotation)),
          h('dt', {}, 'Rotation state'), h('dd', { id: 'rotation-state' }, days === null ? '—' : days <= 0 ? h('span', { class: 'badge overdue' }, 'Overdue') : h('span', { class: 'badge ok' }, 'Current, due in ' + days + (days === 1 ? ' day' : ' days'))),
          h('dt', {}, 'Compromise marks'), h('dd', { id: 'compromise' }, compromise)));
      const tick = () => {
        const left = shown.expiresAt - Date.now();
        if (left <= 0) { expire(); return; }
        countdown.textContent = fmtDuration(left);
        if (left <= WARN_MS && warning.hidden) {
          warning.textContent = 'The view closes in less than 2 minutes; the password will be removed from the page.';
          warning.hidden = false;
        }
      };
      tick();
      timer = setInterval(tick, 1000);
    }
    // expire removes the secret (from the DOM and from memory) and asks
    // for the password and code again.
    function expire() {
      const span = fmtWindow(shown.windowMs);
      state.reauth = null;
      locked('The view closed after its ' + span + '; the password was removed from the page.');
      if (alive) unlock();
    }

    async function loadAudit(page) {
      auditErr.hidden = true;
      try {
        const r = await api('GET', base + '/audit', { query: { page, per_page: AUDIT_PER_PAGE } });
        if (!alive) return;
        auditPage = r.page;
        const pages = Math.max(1, Math.ceil(r.total / r.per_page));
        auditBody.replaceChildren(...foldTrailReads(r.events).map((row) => {
          const e = row.event;
          const what = eventWords(e);
          return h('tr', { 'data-event': e.event },
            h('td', { 'data-label': 'Time' }, row.count > 1 ? fmtTime(row.first) + ' to ' + fmtTime(e.timestamp).slice(11) : fmtTime(e.timestamp)),
            h('td', { 'data-label': 'Admin' }, row.users.join(', ') || '—'),
            h('td', { 'data-label': 'IP' }, row.ips.join(', ') || '—'),
            h('td', { 'data-label': 'Action' }, what, e.severity && e.severity !== 'info' ? [' ', h('span', { class: 'badge ' + (e.severity === 'critical' ? 'red' : 'amber') }, e.severity === 'critical' ? 'Critical' : 'Warning')] : null),
            h('td', { 'data-label': 'Details' }, row.count > 1 ? row.count + ' times' : eventDetails(e) || '—'));
        }));
        if (!r.events.length) auditBody.append(h('tr', {}, h('td', { colspan: '5' }, 'No events.')));
        auditInfo.textContent = 'Page ' + r.page + ' of ' + pages;
        auditPrev.disabled = r.page <= 1; auditNext.disabled = r.page >= pages;
      } catch (ex) {
        if (alive) showError(auditErr, ex);
      }
    }

    async function rotate() {
      actionErr.hidden = true;
      const v = await confirmStep({
        title: 'Rotate this credential now?',
        text: 'MailU gets a new admin password at once; whoever uses the old one must read it again.',
        fields: [{ name: 'reason', label: 'Reason (for the audit trail)', required: true, multiline: true }],
        confirmLabel: 'Rotate now',
      });
      if (!v || !alive || !(await ensureReauth('Confirm your password and code to rotate.')) || !alive) return;
      try {
        const r = await api('POST', base + '/rotate', { reauth: true, body: { reason: v.reason } });
        actionMsg.replaceChildren(h('p', { class: 'notice' }, (r.outcome === 'resumed' ? 'An interrupted rotation was finished' : 'Rotated') + ' at ' + fmtTime(r.last_rotated) + '; next rotation ' + fmtTime(r.next_rotation) + '.'));
        if (cred) { forget(); unlock(); }
      } catch (ex) { showError(actionErr, ex); }
      loadAudit(1);
    }
    async function reset() {
      actionErr.hidden = true;
      const v = await confirmStep({
        title: 'Emergency reset?',
        text: 'The current password is marked compromised and replaced at once. The new password is shown once.',
        fields: [
          { name: 'incident_id', label: 'Incident id', required: true, max: '64', check: /^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$/, hint: 'For example INC-2026-0042: 3 to 64 letters, digits, . _ : or -.' },
          { name: 'reason', label: 'Reason (for the audit trail)', required: false, multiline: true },
        ],
        confirmLabel: 'Reset now', danger: true,
      });
      if (!v || !alive || !(await ensureReauth('Confirm your password and code to reset.')) || !alive) return;
      const held = state.reauth; // the one-time password goes when its window ends
      let r;
      try { r = await api('POST', base + '/emergency-reset', { reauth: true, body: { incident_id: v.incident_id, reason: v.reason } }); } catch (ex) { showError(actionErr, ex); return; }
      loadAudit(1);
      if (cred) { forget(); unlock(); }
      if (!r.password) {
        actionMsg.replaceChildren(h('p', { class: 'notice' }, 'This incident already reset the credential; no new password was set.'));
        return;
      }
      let once = r.password;
      r = null;
      // Like the view, the dialog keeps the password only for the re-auth
      // window: at its end the password leaves the page (and the
      // clipboard); it can then be read like any credential.
      const code = h('code', { class: 'secret', id: 'one-time-password' }, once);
      const copied = h('span', { class: 'copied', role: 'status', id: 'copied-one-time' });
      const left = h('span', { class: 'countdown', id: 'one-time-countdown', role: 'timer', 'aria-live': 'off' });
      let wipe = null;
      const dlg = modal(h('div', {},
        h('h2', { id: 'otp-title' }, 'New password, shown once'),
        h('p', {}, 'Store it where it is needed now. It is not shown again here; later it is read like any credential, with its own audit record.'),
        h('p', {}, code),
        h('p', { class: 'hint' }, 'This closes in ', left, ', when your confirmation runs out, as the view does.'),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', id: 'copy-one-time', onclick: async () => { copied.textContent = (await copySecret(once || '')) ? 'Copied; cleared from the clipboard when this closes.' : 'Copying failed'; } }, 'Copy'), copied,
          h('button', { type: 'button', id: 'dismiss-password', autofocus: true, onclick: (e) => e.target.closest('dialog').close() }, 'I have stored it'))),
      {
        labelledBy: 'otp-title', closable: false,
        onClose: (why) => {
          clearInterval(wipe);
          code.textContent = ''; once = null;
          clearClipboard();
          if (why === 'expired') actionMsg.replaceChildren(h('p', { class: 'notice', id: 'one-time-expired' }, 'Reset for incident ' + v.incident_id + '. The new password was removed from the page when your confirmation ran out, after ' + fmtWindow(held.windowMs) + '; confirm again to read it.'));
        },
      });
      const tick = () => {
        const ms = held.expiresAt - Date.now();
        if (ms <= 0) dlg.close('expired');
        else left.textContent = fmtDuration(ms);
      };
      actionMsg.replaceChildren(h('p', { class: 'notice' }, 'Reset for incident ' + v.incident_id + '.'));
      tick();
      if (once !== null) wipe = setInterval(tick, 1000);
    }

    setPage('SMTP credentials of ' + tenantID,
      h('h1', {}, 'SMTP credentials'),
      h('p', { class: 'sub' }, 'Tenant ', h('code', {}, tenantID)),
      isAdmin() ? h('p', {}, h('a', { href: P + '/smtp-credentials', 'data-route': true }, 'Back to the overview')) : null,
      h('section', { class: 'panel', 'aria-labelledby': 'secret-title' }, h('h2', { id: 'secret-title' }, 'Credential'), secretErr, secretBox),
      isAdmin() ? h('section', { class: 'panel', 'aria-labelledby': 'actions-title', id: 'actions' },
        h('h2', { id: 'actions-title' }, 'Actions'),
        h('button', { type: 'button', id: 'rotate', onclick: rotate }, 'Rotate now…'),
        h('button', { type: 'button', class: 'danger', id: 'emergency-reset', onclick: reset }, 'Emergency reset…'),
        actionErr, actionMsg) : null,
      h('section', { class: 'panel', 'aria-labelledby': 'audit-title' },
        h('h2', { id: 'audit-title' }, 'Recent activity'),
        auditErr,
        h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: 'audit' },
          h('caption', { class: 'sr-only' }, 'The tenant\'s audit trail, newest first'),
          h('thead', {}, h('tr', {}, ['Time', 'Admin', 'IP', 'Action', 'Details'].map((c) => h('th', { scope: 'col' }, c)))),
          auditBody)),
        h('nav', { class: 'pager', 'aria-label': 'Audit pages' }, auditPrev, auditInfo, auditNext)));
    locked('The credential is shown only after you confirm your password and code.');
    loadAudit(1);
    unlock();
    return { stop() { alive = false; forget(); } };
  }

  // ------------------------------------------------------------- start
  async function start() {
    $('sign-out').addEventListener('click', signOut);
    try {
      const r = await fetch(P + '/config.json', { cache: 'no-store', credentials: 'omit' });
      state.config = await r.json();
    } catch {
      main().replaceChildren(h('p', { class: 'error', role: 'alert' }, 'The console could not load its settings. Reload the page.'));
      return;
    }
    if (signedIn() && location.pathname === P + '/sign-in') { afterSignIn(); return; }
    render();
  }
  start();
})();
