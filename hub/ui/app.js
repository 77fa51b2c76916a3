// 连锁总部: headquarters' page, served by the hub. One screen at a time, chosen in the header
// (总览, 报表, 会员, 商品, 调拨, 规则·等级, 营销, 员工; the screen is kept in the address's #),
// every table sortable by a click on its heading. This file holds what every screen shares:
// the API call, the language, login, the screens and the sorting; each screen's script loads
// after it (overview.js, reports.js, members.js, transfers.js, rules.js, staff.js, catalogue.js,
// tiers.js, marketing.js, import.js, backups.js).
"use strict";


// Dates are Shanghai's (the chain's time zone).
const day = (d) => new Intl.DateTimeFormat("sv-SE", { timeZone: "Asia/Shanghai" }).format(d);
const today = () => day(new Date());
const monthStart = () => today().slice(0, 8) + "01";

async function api(path, raw, method, body, extra) {
  const headers = Object.assign(token ? { Authorization: "Bearer " + token } : {}, extra || {});
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { headers, method: method || "GET", body: body === undefined ? undefined : JSON.stringify(body) });
  if (raw) return r;
  let data = {};
  try { data = await r.json(); } catch (e) {}
  if (r.status === 401 && (data.code === "login_required" || data.code === "session_expired")) showLogin();
  return { ok: r.ok, status: r.status, data };
}
const said = (d) => (lang === "zh" ? d.message || d.detail || "" : d.detail || d.message || "");
const yuan = (m) => (m ? "¥" + m.amount : "—");

function applyLang() {
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = lang === "zh" ? "EN" : "中文";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  if (typeof marketingLang === "function") marketingLang();
  showWho();
}

function showWho() {
  const who = JSON.parse(sessionStorage.getItem("hq-who") || "null");
  $("who").textContent = who ? `${who.name} · ${t("role_" + who.role)}` : "";
  $("logout").hidden = !who;
}

function showLogin() {
  token = null;
  sessionStorage.removeItem("hq-token");
  sessionStorage.removeItem("hq-who");
  $("login").hidden = false;
  $("hq").hidden = true;
  $("hq-nav").hidden = true;
  $("logout").hidden = true;
  $("login-staff").focus();
}

function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }


// Who acts: the session names them at the hub; an open headquarters (no logins yet) records
// the page itself.
const staffId = () => "hq-page";

// In the chain's time zone, whatever the browser's.
const when = (ms) => new Date(ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: "Asia/Shanghai" });

function markField(form, line, data) {
  form.querySelectorAll(".field-error").forEach((el) => el.remove());
  form.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  const input = data.field && form.querySelector(`[name="${data.field}"]`);
  if (input) {
    input.classList.add("invalid");
    const note = document.createElement("span");
    note.className = "field-error";
    note.textContent = `${said(data)}（${data.detail}）`;
    input.insertAdjacentElement("afterend", note);
    input.focus();
  }
  $(line).classList.remove("ok");
  $(line).textContent = input ? "" : said(data);
}
// What went well, said on the line errors use (in green).
function okLine(line, text) {
  $(line).textContent = text;
  $(line).classList.add("ok");
}


// 屏幕: one screen at a time, its data loaded when it is shown; the address keeps it (#reports).
const SCREEN_LOAD = {
  overview: () => Promise.all([overview(), loadBackups()]),
  members: () => null,
  catalogue: () => window.catalogueScreen && window.catalogueScreen(),
  transfers: () => transfers(),
  rules: () => Promise.all([rules(), window.tiers && window.tiers(), window.referralScreen && window.referralScreen(), window.cardRulesScreen && window.cardRulesScreen()]),
  marketing: () => Promise.all([window.marketing && window.marketing(), window.giftsScreen && window.giftsScreen()]),
  staff: () => window.staffScreen && window.staffScreen(),
};
let screen = "overview";
function showScreen(name) {
  if (!document.querySelector(`#hq > [data-screen="${name}"]`)) name = "overview";
  screen = name;
  document.querySelectorAll("#hq > [data-screen]").forEach((el) => { el.hidden = el.dataset.screen !== name; });
  document.querySelectorAll("#hq-nav button").forEach((b) => b.classList.toggle("active", b.dataset.screen === name));
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  const load = SCREEN_LOAD[name];
  return load ? load() : null;
}
document.querySelectorAll("#hq-nav button").forEach((b) => b.addEventListener("click", () => showScreen(b.dataset.screen)));

// 排序: a click on a table's heading sorts its rows by that column, again the other way;
// amounts (¥1,234.50), counts and percentages as numbers, the rest as Chinese text.
function sortValue(text) {
  const plain = text.replace(/[¥,%\s]/g, "");
  return /^-?\d+(\.\d+)?$/.test(plain) ? parseFloat(plain) : null;
}
document.addEventListener("click", (e) => {
  const th = e.target.closest("#hq table thead th");
  if (!th || e.target.closest("input, button, select, a") || !th.textContent.trim()) return;
  const body = th.closest("table").tBodies[0];
  if (!body) return;
  const column = Array.from(th.parentNode.children).indexOf(th);
  const dir = th.dataset.sort === "asc" ? -1 : 1;
  th.parentNode.querySelectorAll("th").forEach((h) => { delete h.dataset.sort; });
  th.dataset.sort = dir === 1 ? "asc" : "desc";
  const key = (tr) => (tr.children[column] ? tr.children[column].textContent.trim() : "");
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const [nx, ny] = [sortValue(x), sortValue(y)];
    if (nx !== null && ny !== null) return (nx - ny) * dir;
    return x.localeCompare(y, "zh-CN", { numeric: true }) * dir;
  });
  rows.forEach((r) => body.appendChild(r));
});

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/v1/sessions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ staff_id: $("login-staff").value.trim(), password: $("login-password").value }),
  });
  const data = await r.json().catch(() => ({}));
  $("login-password").value = "";
  if (!r.ok) { $("login-error").textContent = said(data); return; }
  token = data.token;
  sessionStorage.setItem("hq-token", token);
  sessionStorage.setItem("hq-who", JSON.stringify({ name: data.name, role: data.role }));
  showWho();
  show();
});

$("logout").addEventListener("click", async () => {
  await fetch("/api/v1/sessions", { method: "DELETE", headers: { Authorization: "Bearer " + token } });
  showLogin();
});

$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("hq-lang", lang);
  applyLang();
  showScreen(screen);
});

async function show() {
  $("login").hidden = true;
  $("hq").hidden = false;
  $("hq-nav").hidden = false;
  await showScreen(location.hash.slice(1) || screen);
}

// Started once every screen's script has loaded.
document.addEventListener("DOMContentLoaded", async () => {
  applyLang();
  $("report-from").value = monthStart();
  $("report-to").value = today();
  const health = await api("/api/v1/health");
  if (health.ok) $("open-mode").hidden = !health.data.open_without_login;
  const probe = await api("/api/v1/stores");
  if (probe.ok) show();
  setInterval(() => { if (!$("hq").hidden && screen === "overview") overview(); }, 10000);
});
