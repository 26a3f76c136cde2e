// SPDX-License-Identifier: Apache-2.0
// jwtd's passkey buttons: the only script of the pages (the rest works
// without JavaScript). It talks to the JSON API with the session cookie;
// the server checks every byte that comes back.
"use strict";

(function () {
  function b64urlToBytes(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function bytesToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function say(el, text) {
    var box = document.getElementById(el.getAttribute("data-status") || "passkey-status");
    if (box) { box.textContent = text; box.hidden = !text; }
  }

  async function api(path, body) {
    var resp = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body || {})
    });
    var data = null;
    try { data = await resp.json(); } catch (e) { /* 204 */ }
    if (!resp.ok) {
      throw new Error((data && data.error_description) || ("The server answered " + resp.status + "."));
    }
    return data;
  }

  function credentialJSON(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: bytesToB64url(cred.rawId), type: cred.type,
      response: {clientDataJSON: bytesToB64url(r.clientDataJSON)}
    };
    if (r.attestationObject) out.response.attestationObject = bytesToB64url(r.attestationObject);
    if (r.authenticatorData) out.response.authenticatorData = bytesToB64url(r.authenticatorData);
    if (r.signature) out.response.signature = bytesToB64url(r.signature);
    if (r.userHandle) out.response.userHandle = bytesToB64url(r.userHandle);
    return out;
  }

  async function register(form) {
    var pw = form.querySelector("input[name=password]").value;
    var name = form.querySelector("input[name=name]").value;
    say(form, "Follow your browser's prompt\u2026");
    var opts = (await api("/auth/passkeys/register/options", {password: pw})).publicKey;
    opts.challenge = b64urlToBytes(opts.challenge);
    opts.user.id = b64urlToBytes(opts.user.id);
    (opts.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBytes(c.id); });
    var cred = await navigator.credentials.create({publicKey: opts});
    var body = {credential: credentialJSON(cred)};
    if (name) body.name = name;
    await api("/auth/passkeys/register", body);
    window.location.assign("/account?done=passkey_added");
  }

  async function signIn(button) {
    var ticket = button.getAttribute("data-ticket");
    say(button, "Follow your browser's prompt\u2026");
    var opts = (await api("/auth/passkeys/login/options", ticket ? {mfa_ticket: ticket} : {})).publicKey;
    opts.challenge = b64urlToBytes(opts.challenge);
    (opts.allowCredentials || []).forEach(function (c) { c.id = b64urlToBytes(c.id); });
    var cred = await navigator.credentials.get({publicKey: opts});
    var body = {credential: credentialJSON(cred), delivery: "cookie"};
    if (ticket) body.mfa_ticket = ticket;
    await api("/auth/passkeys/login", body);
    window.location.assign(button.getAttribute("data-next") || "/account");
  }

  function guard(el, fn) {
    return function (ev) {
      ev.preventDefault();
      fn(el).catch(function (e) {
        say(el, e && e.name === "NotAllowedError" ? "The passkey prompt was closed or timed out." :
                 (e && e.message) || "That did not work.");
      });
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var supported = !!(window.PublicKeyCredential && navigator.credentials);
    document.querySelectorAll("[data-passkey]").forEach(function (el) {
      if (!supported) return;
      el.hidden = false;
      var kind = el.getAttribute("data-passkey");
      if (kind === "register") el.addEventListener("submit", guard(el, register));
      if (kind === "signin") el.addEventListener("click", guard(el, signIn));
    });
  });
})();
