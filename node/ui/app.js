// 收银台: the cashier's page, served by the store's node: one screen per job (收银 with the cart
// and the payment panel, 快速收银·充值, 会员详情, 退货, 交班·备份) under a member bar every screen
// shares. Keyboard first: F2 find a member, F3 the member's page, F4 quick sale, F6 top-up, F8
// the cart (scan), F9 returns, F10 shift, Enter submits, Esc drops the member. Every write
// carries an idempotency key made once per sale, so a double press of Enter or of 结账 is one
// sale. An error the node ties to a field is shown next to that field, and nothing is saved.
// The other screens' scripts (member.js, quick.js, basket.js, returns.js, …) load after this one.
"use strict";

let lang = localStorage.getItem("lang") || "zh";
let token = sessionStorage.getItem("token");
let member = null;
let saleKey = null;
let topupKey = null;
let lastSync = null;
let topupRules = [];
const $ = (id) => document.getElementById(id);
const t = (k) => (T[lang] && T[lang][k]) || T.zh[k] || k;

function newKey() {
  return "ui-" + Array.from(crypto.getRandomValues(new Uint32Array(4)), (n) => n.toString(16)).join("");
}

// One key per form until it succeeds or one of its fields changes, so a double Enter or click
// is one write (the node answers a repeated key with the first answer).
const formKeys = {};
const keyFor = (name) => (formKeys[name] = formKeys[name] || newKey());
const keyDone = (name) => { delete formKeys[name]; };
document.addEventListener("input", (e) => { const f = e.target.form; if (f) keyDone(f.id); });

function applyLang() {
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $("lang").textContent = lang === "zh" ? "EN" : "中文";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  if (lastSync) showLink(lastSync);
  showWho();
}

async function api(method, path, body, key) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["Authorization"] = "Bearer " + token;
  if (key) headers["Idempotency-Key"] = key;
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, data: { message: "无法连接本店服务", detail: String(e) } };
  }
  const text = await r.text();
  let data = {};
  try { data = JSON.parse(text); } catch (e) { data = { text }; }
  if (r.status === 401 && (data.code === "login_required" || data.code === "session_expired")) showLogin();
  return { ok: r.ok, status: r.status, data };
}

const said = (d) => (lang === "zh" ? d.message || d.detail || "" : d.detail || d.message || "");
const yuan = (m) => (m ? "¥" + m.amount : "—");

// An error the node ties to a field goes next to that field (the input named so in `form`);
// any other error goes to the form's own line.
function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((el) => el.remove());
  form.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
}
function showError(form, line, data) {
  clearErrors(form);
  const input = data.field && form.querySelector(`[name="${data.field}"]`);
  if (input) {
    input.classList.add("invalid");
    const note = document.createElement("span");
    note.className = "field-error";
    note.textContent = `${said(data)}（${data.detail}）`;
    input.insertAdjacentElement("afterend", note);
    input.focus();
    $(line).textContent = "";
  } else {
    $(line).textContent = said(data);
  }
}

// Who is logged in (kept for a reload of the page).
function showWho() {
  const who = JSON.parse(sessionStorage.getItem("who") || "null");
  $("who").textContent = who ? `${who.name} · ${t("role_" + who.role)}` : "";
  $("logout").hidden = !who;
}

function showLogin() {
  token = null;
  sessionStorage.removeItem("token");
  sessionStorage.removeItem("who");
  $("login").hidden = false;
  $("till").hidden = true;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-staff").focus();
}

function showTill() {
  $("login").hidden = true;
  $("till").hidden = false;
  $("nav").hidden = false;
  showScreen("sale");
  $("lookup-phone").focus();
  loadRules();
  loadBackups();
}

// 屏幕: one job at a time; the member bar stays above every screen.
const SCREEN_FOCUS = { sale: "scan-code", quick: "sale-amount", returns: "return-sale", store: "shift-counted" };
function showScreen(name, focus) {
  document.querySelectorAll("#till .screen").forEach((el) => { el.hidden = el.id !== "screen-" + name; });
  document.querySelectorAll("#nav button").forEach((b) => b.classList.toggle("active", b.dataset.screen === name));
  if (name === "member") openMemberPage();
  if (name === "sale") loadFavourites();
  if (name === "store") loadShift();
  if (name === "office") loadOffice();
  const input = focus === undefined ? SCREEN_FOCUS[name] : focus;
  if (input) $(input).focus();
}
$("nav").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-screen]");
  if (b) showScreen(b.dataset.screen);
});

function showLink(s) {
  lastSync = s;
  const el = $("link");
  el.className = "link " + (s.link === "online" || s.link === "disabled" ? "online" : "offline");
  let text = t("link_" + s.link);
  if (s.backlog > 0) text += ` · ${t("backlog")} ${s.backlog} ${t("entries")}`;
  // Fenced, or cut off past the offline lease: say that member money waits, and why.
  if (s.rights_paused) {
    el.className = "link offline";
    text += ` · ${t(s.rights_paused.code === "store_fenced" ? "rights_fenced" : "rights_lease")}`;
  }
  // A PC clock off by over a minute: the till goes by headquarters' time; the PC should be set.
  if (Math.abs(s.clock_off_ms || 0) > 60000) text += ` · ${t("clock_fixed")}`;
  // A certificate running out within 30 days, or refused: say so before the link stops.
  const days = s.certificate_expires_ms ? Math.floor((s.certificate_expires_ms - Date.now()) / 86400000) : null;
  if (days !== null && days < 30) {
    el.className = "link offline";
    text += ` · ${t("cert_days")} ${Math.max(days, 0)}`;
    if (s.renew_refused) text += ` (${t("renew_refused")}: ${s.renew_refused})`;
  }
  // A new PC, or data from an older backup: the store's log comes back from headquarters first.
  if (s.restore_to != null) {
    el.className = "link offline";
    const unknown = s.restore_to >= Number.MAX_SAFE_INTEGER;
    text += ` · ${t(unknown ? "restoring_wait" : "restoring")}`;
    if (!unknown) text += ` (${s.log_len}/${s.restore_to})`;
  }
  if (s.refused) {
    el.className = "link offline";
    text += ` · ${t("refused_why")}: ${s.refused}`;
  }
  el.title = s.rights_paused ? s.rights_paused.message : "";
  el.textContent = text;
}

async function refreshLink() {
  if ($("till").hidden) return;
  const s = await api("GET", "/api/v1/sync");
  if (s.ok) showLink(s.data);
}

// 充值活动: the chain's top-up rules (headquarters' once published), offered in the select;
// typing an amount picks the richest rule it meets.
async function loadRules() {
  const r = await api("GET", "/api/v1/member-rules");
  if (!r.ok) return;
  topupRules = r.data.rules.top_up_rules || [];
  // 外币现金: the currencies this store takes, at its rates (yuan per unit).
  const rates = Object.entries(r.data.exchange_rates || {});
  $("pay-foreign-row").hidden = !rates.length;
  $("pay-foreign-currency").innerHTML = "";
  for (const [code, rate] of rates) {
    const o = document.createElement("option");
    o.value = code;
    o.textContent = `${code} ${rate}`;
    $("pay-foreign-currency").appendChild(o);
  }
  // 会员等级: the tiers a manager may give, offered as the tier field's choices.
  const names = $("tier-names");
  names.innerHTML = "";
  for (const tier of r.data.tiers || []) {
    const o = document.createElement("option");
    o.value = tier;
    names.appendChild(o);
  }
  const select = $("topup-rule");
  select.querySelectorAll("option[value]:not([value=''])").forEach((o) => o.remove());
  for (const rule of topupRules) {
    const o = document.createElement("option");
    o.value = rule.id;
    o.textContent = `${rule.id}（满 ¥${rule.pay_at_least} 送 ¥${rule.bonus}）`;
    select.appendChild(o);
  }
}

function pickRule() {
  const amount = parseFloat($("topup-amount").value) || 0;
  const met = topupRules.filter((r) => parseFloat(r.pay_at_least) <= amount);
  met.sort((a, b) => parseFloat(b.bonus) - parseFloat(a.bonus));
  $("topup-rule").value = met.length ? met[0].id : "";
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("POST", "/api/v1/sessions", { staff_id: $("login-staff").value.trim(), password: $("login-password").value });
  $("login-password").value = "";
  if (!r.ok) { $("login-error").textContent = said(r.data); return; }
  token = r.data.token;
  sessionStorage.setItem("token", token);
  $("login-error").textContent = "";
  sessionStorage.setItem("who", JSON.stringify({ name: r.data.name, role: r.data.role }));
  showWho();
  showTill();
  refreshLink();
});

$("logout").addEventListener("click", async () => {
  await api("DELETE", "/api/v1/sessions");
  showLogin();
});

// 交班检查: safe to close the shift only when headquarters holds everything this store wrote.
$("shift").addEventListener("click", async () => {
  const s = await api("GET", "/api/v1/sync");
  if (!s.ok) return;
  showLink(s.data);
  $("shift-result").textContent = s.data.link === "disabled"
    ? t("shift_standalone")
    : s.data.backlog === 0
      ? t("shift_ok")
      : `${t("shift_wait")} ${s.data.backlog} ${t("shift_wait_tail")}`;
});

$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("lang", lang);
  applyLang();
});

document.addEventListener("keydown", (e) => {
  if ($("till").hidden) return;
  const go = { F3: ["member"], F4: ["quick", "sale-amount"], F6: ["quick", "topup-amount"], F8: ["sale", "scan-code"], F7: ["office"], F9: ["returns"], F10: ["store"] }[e.key];
  if (go) { e.preventDefault(); showScreen(...go); }
  if (e.key === "F2") { e.preventDefault(); $("lookup-phone").focus(); }
  if (e.key === "Escape") clearMember();
});

// Once every screen's script has loaded.
document.addEventListener("DOMContentLoaded", async function start() {
  applyLang();
  const h = await api("GET", "/api/v1/health");
  if (h.ok) {
    $("store").textContent = `${h.data.store_name} · ${h.data.store_id}`;
    document.title = `${t("title")} · ${h.data.store_name}`;
    $("open-mode").hidden = !h.data.open_without_login;
  }
  const s = await api("GET", "/api/v1/sync"); // also tells whether a login is needed
  if (s.ok) { showTill(); showLink(s.data); }
  setInterval(refreshLink, 3000);
});

