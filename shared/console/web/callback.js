// The hosted sign-in's redirect target, opened in the pop-up the console
// started: it hands the authorization code and state to the console's
// window (same origin only), takes them out of the address bar and
// closes. The code is useless without the PKCE verifier, which only the
// console's window holds, in memory.
'use strict';
(() => {
  const p = new URLSearchParams(location.search);
  const msg = { type: 'smtp-vault-sign-in', code: p.get('code'), state: p.get('state'), error: p.get('error') };
  history.replaceState(null, '', location.pathname);
  const out = document.getElementById('message');
  if (!window.opener) {
    out.textContent = 'Open the console and choose “Sign in” there; this window is only its sign-in step.';
    return;
  }
  window.opener.postMessage(msg, location.origin);
  out.textContent = 'Signed in. You can close this window.';
  window.close();
})();
