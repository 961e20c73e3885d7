// The minimal shell: first-run setup, login and the live view. No framework and no
// inline script (the page's CSP forbids it).
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = null;

function show(...ids) {
  for (const id of ["setup", "recovery", "login", "live", "nav"]) {
    $(id).hidden = !ids.includes(id);
  }
}

function say(text) {
  $("message").textContent = text || "";
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (_) { data = null; }
  }
  return { res, data };
}

function problem(data, fallback) {
  return (data && data.error && data.error.message) || fallback;
}

function startLive() {
  show("live", "nav");
  say("");
  const img = $("live");
  img.onerror = () => {
    // Reconnect after a network drop or a device restart.
    say("Connection lost; reconnecting…");
    setTimeout(() => { img.src = "/api/v1/live.mjpg?t=" + Date.now(); }, 2000);
  };
  img.onload = () => say("");
  img.src = "/api/v1/live.mjpg";
}

async function start() {
  const me = await api("GET", "/api/v1/session");
  if (me.res.ok) {
    csrf = me.data.csrf_token;
    return startLive();
  }
  const setup = await api("GET", "/api/v1/setup");
  show(setup.data && setup.data.needed ? "setup" : "login");
}

$("setup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const { res, data } = await api("POST", "/api/v1/setup", {
    username: form.get("username"),
    password: form.get("password"),
  });
  if (!res.ok) {
    if (res.status === 409) {
      return say("Someone else has already set up this camera. If that was not you, reset the device.");
    }
    return say(problem(data, "Setup failed."));
  }
  csrf = data.csrf_token;
  $("recovery-key").textContent = data.recovery_key;
  show("recovery");
  say("");
});

$("recovery-done").addEventListener("click", () => {
  $("recovery-key").textContent = "";
  startLive();
});

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const body = { username: form.get("username"), password: form.get("password") };
  if (form.get("totp")) body.totp = form.get("totp");
  const { res, data } = await api("POST", "/api/v1/session", body);
  if (res.ok) {
    csrf = data.csrf_token;
    return startLive();
  }
  const code = data && data.error && data.error.code;
  if (code === "totp_required" || code === "totp_invalid") $("totp-field").hidden = false;
  say(problem(data, "Login failed."));
});

$("logout").addEventListener("click", async () => {
  await api("DELETE", "/api/v1/session");
  csrf = null;
  $("live").removeAttribute("src");
  show("login");
});

start().catch((e) => say("The camera is not answering: " + e));
