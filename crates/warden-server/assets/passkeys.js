// Warden's sign-in and passkeys pages: the browser's WebAuthn calls and the forms, over
// Warden's JSON API with the session's cookies (state-changing calls carry the CSRF token).
"use strict";

(function () {
  const status = document.getElementById("status");
  const say = (text, kind) => {
    status.textContent = text;
    status.className = kind || "";
  };

  // base64url <-> bytes: WebAuthn speaks ArrayBuffers, the API base64url strings.
  const toBytes = (s) => {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  };
  const toB64u = (buf) => {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const csrf = () => {
    const m = document.cookie.match(/(?:^|;\s*)__Host-warden_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  };

  async function api(method, path, body) {
    const headers = { "x-csrf-token": csrf() };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = new Error((data && (data.detail || data.title)) || res.statusText);
      err.status = res.status;
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  const explain = (e) =>
    e.name === "NotAllowedError"
      ? "The passkey prompt was closed or timed out."
      : e.message || String(e);

  // --- Sign-in page ---------------------------------------------------------------------

  // Where to go once signed in: a console or account path named by `?next=`, else the console.
  const next = () => {
    const n = new URLSearchParams(location.search).get("next") || "";
    return /^\/(console|account)(\/|\?|$)/.test(n) ? n : "/console";
  };

  async function passkeySignIn(email) {
    say("Waiting for your passkey…");
    try {
      const start = await api("POST", "/api/v1/auth/passkey/options", email ? { email } : {});
      const pk = start.options.publicKey;
      pk.challenge = toBytes(pk.challenge);
      for (const c of pk.allowCredentials || []) c.id = toBytes(c.id);
      const cred = await navigator.credentials.get({ publicKey: pk });
      const r = cred.response;
      await api("POST", "/api/v1/auth/passkey", {
        ceremony: start.ceremony,
        cookies: true,
        credential: {
          id: cred.id,
          rawId: toB64u(cred.rawId),
          type: cred.type,
          extensions: cred.getClientExtensionResults(),
          response: {
            authenticatorData: toB64u(r.authenticatorData),
            clientDataJSON: toB64u(r.clientDataJSON),
            signature: toB64u(r.signature),
            userHandle: r.userHandle ? toB64u(r.userHandle) : null,
          },
        },
      });
      location.assign(next());
    } catch (e) {
      say(e.status === 401 ? "That passkey did not sign you in." : explain(e), "bad");
    }
  }

  // Home-realm discovery: a work email whose domain has one provider goes straight to it (a
  // navigation, which the page's form-action policy allows where a form's redirect to the
  // provider would not be); none or several: the form's own page says so or offers the choice.
  function discoverForm() {
    const form = document.querySelector("form.sso-discover");
    if (!form) return;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const found = await api("POST", "/api/v1/auth/sso/discover", { email: form.email.value.trim() });
        if (found.providers.length === 1) {
          location.assign(`${found.providers[0].start}?redirect=${encodeURIComponent(form.next.value)}`);
          return;
        }
      } catch (_) {
        // the page explains (not an address, or Warden unreachable)
      }
      form.submit();
    });
  }

  function signInPage() {
    discoverForm();
    const form = document.getElementById("password-sign-in");
    document.getElementById("passkey-sign-in").addEventListener("click", () => passkeySignIn());
    const forEmail = document.getElementById("passkey-for-email");
    if (forEmail.type === "button") forEmail.addEventListener("click", () => passkeySignIn(form.email.value.trim()));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      // Password sign-in is off: the form's one way is a passkey for the email.
      if (!form.password) return passkeySignIn(form.email.value.trim());
      say("Signing in…");
      try {
        await api("POST", "/api/v1/auth/sign-in", {
          email: form.email.value.trim(),
          password: form.password.value,
          cookies: true,
        });
        location.assign(next());
      } catch (e) {
        say(e.message, "bad");
      }
    });
    // A browser whose access cookie ran out but whose session lives goes straight on.
    if (csrf()) {
      fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "x-csrf-token": csrf() },
        credentials: "same-origin",
      })
        .then((res) => {
          if (res.ok) location.assign(next());
        })
        .catch(() => {});
    }
    if (!window.PublicKeyCredential) {
      say("This browser cannot use passkeys; sign in with your password.", "bad");
    }
  }

  // --- Passkeys page --------------------------------------------------------------------

  const when = (t) => (t ? new Date(t).toLocaleString() : "never");

  async function load() {
    let me;
    try {
      me = await api("GET", "/api/v1/me");
    } catch (e) {
      if (e.status === 401) {
        location.assign("/sign-in");
        return;
      }
      throw e;
    }
    document.getElementById("who").textContent = "Signed in as " + me.email + ".";
    const list = document.getElementById("passkeys");
    list.replaceChildren();
    const keys = await api("GET", "/api/v1/me/passkeys");
    if (keys.length === 0) {
      const li = document.createElement("li");
      li.className = "meta";
      li.textContent = "No passkeys yet.";
      list.append(li);
    }
    for (const k of keys) {
      const li = document.createElement("li");
      const text = document.createElement("div");
      const name = document.createElement("strong");
      name.textContent = k.name;
      const meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = "Added " + when(k.created_at) + " · last used " + when(k.last_used_at);
      text.append(name, meta);
      if (k.flagged_at) {
        const flag = document.createElement("div");
        flag.className = "flag";
        flag.textContent = "Possibly copied (its counter went backwards): it no longer signs in.";
        text.append(flag);
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.addEventListener("click", async () => {
        try {
          await api("DELETE", "/api/v1/me/passkeys/" + encodeURIComponent(k.id));
          say("Removed " + k.name + ".", "good");
          await load();
        } catch (e) {
          say(e.message, "bad");
        }
      });
      li.append(text, remove);
      list.append(li);
    }
  }

  async function addPasskey(name) {
    say("Follow your browser's prompt…");
    try {
      const start = await api("POST", "/api/v1/me/passkeys/registration");
      const pk = start.options.publicKey;
      pk.challenge = toBytes(pk.challenge);
      pk.user.id = toBytes(pk.user.id);
      for (const c of pk.excludeCredentials || []) c.id = toBytes(c.id);
      const cred = await navigator.credentials.create({ publicKey: pk });
      const r = cred.response;
      await api("POST", "/api/v1/me/passkeys", {
        ceremony: start.ceremony,
        name,
        credential: {
          id: cred.id,
          rawId: toB64u(cred.rawId),
          type: cred.type,
          extensions: cred.getClientExtensionResults(),
          response: {
            attestationObject: toB64u(r.attestationObject),
            clientDataJSON: toB64u(r.clientDataJSON),
            transports: r.getTransports ? r.getTransports() : undefined,
          },
        },
      });
      say("Added " + name + ".", "good");
      document.getElementById("add-passkey").reset();
      await load();
    } catch (e) {
      if (e.code === "reauthentication-required") {
        say("For your safety, sign in again before adding a passkey.", "bad");
      } else {
        say(explain(e), "bad");
      }
    }
  }

  function passkeysPage() {
    const form = document.getElementById("add-passkey");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      addPasskey(form.name.value.trim());
    });
    document.getElementById("sign-out").addEventListener("click", async () => {
      try {
        await api("POST", "/api/v1/auth/sign-out");
      } finally {
        location.assign("/sign-in");
      }
    });
    load().catch((e) => say(e.message, "bad"));
  }

  const page = document.querySelector("[data-page]");
  if (page && page.dataset.page === "sign-in") signInPage();
  if (page && page.dataset.page === "passkeys") passkeysPage();
})();
