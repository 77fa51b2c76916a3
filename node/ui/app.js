// 收银台: the cashier's page, served by the store's node. Keyboard first: F2 member, F4 sale,
// F6 top-up, Enter submits, Esc drops the member. Every write carries an idempotency key made
// once per sale, so a double press of Enter or of 结账 is one sale.
"use strict";

const T = {
  zh: {
    title: "收银台", link_online: "在线", link_offline: "离线", link_connecting: "连接中",
    link_disabled: "单店运行", backlog: "待同步", entries: "条", logout: "退出", login: "员工登录",
    staff_id: "员工编号", password: "密码 / PIN", login_button: "登录", member: "会员",
    phone: "手机号", find: "查找", stored_value: "储值", principal: "本金", bonus: "赠送",
    points: "积分", clear_member: "不用会员", not_found: "没有这个会员，登记为新会员：",
    name: "姓名", register: "登记", checkout: "收银", amount: "金额 (元)",
    tendered: "实收现金 (元)", pay_stored: "储值支付", pay: "结账", paid: "已收款",
    change: "找零", receipt: "打印小票", top_up: "储值充值", offer: "活动",
    top_up_button: "充值", topped_up: "充值成功，储值余额", need_member: "请先查找会员",
    member_password: "支付密码", role_cashier: "收银员", role_manager: "店长",
    role_hq_admin: "总部管理员", role_auditor: "审计", items: "商品结账", scan: "扫码 / 商品编码",
    add: "加入", clear_basket: "清空", product: "商品", qty: "数量", unit_price: "单价",
    steps: "优惠", line_net: "小计", subtotal: "原价", discount: "优惠", due: "应付",
    points_earned: "本单积分", use_points: "积分抵现", pay_stored_amount: "储值支付 (元)",
    pay_card: "银行卡 (元)", card_ref: "刷卡单号", shift_check: "交班检查",
    shift_ok: "可以交班：本店记录已全部送达总部", shift_wait: "暂不宜交班：尚有",
    shift_wait_tail: "条记录未送达总部", shift_standalone: "本店未连接总部（单店运行）",
  },
  en: {
    title: "Till", link_online: "online", link_offline: "offline", link_connecting: "connecting",
    link_disabled: "standalone", backlog: "to sync", entries: "entries", logout: "Log out",
    login: "Staff login", staff_id: "Staff ID", password: "Password / PIN",
    login_button: "Log in", member: "Member", phone: "Phone", find: "Find",
    stored_value: "Stored value", principal: "principal", bonus: "bonus", points: "Points",
    clear_member: "No member", not_found: "No such member. Register:", name: "Name",
    register: "Register", checkout: "Checkout", amount: "Amount (CNY)",
    tendered: "Cash handed over (CNY)", pay_stored: "Pay from stored value", pay: "Pay",
    paid: "Paid", change: "Change", receipt: "Print receipt", top_up: "Top up",
    offer: "Offer", top_up_button: "Top up", topped_up: "Topped up; stored value now",
    need_member: "Find the member first", member_password: "Payment password",
    role_cashier: "cashier", role_manager: "manager", role_hq_admin: "HQ admin",
    role_auditor: "auditor", items: "Item checkout", scan: "Scan / SKU", add: "Add",
    clear_basket: "Clear", product: "Product", qty: "Qty", unit_price: "Price", steps: "Discounts",
    line_net: "Line", subtotal: "Subtotal", discount: "Discount", due: "Due",
    points_earned: "Points earned", use_points: "Points to use",
    pay_stored_amount: "Stored value (CNY)", pay_card: "Card (CNY)", card_ref: "Card slip no.",
    shift_check: "Close shift?", shift_ok: "Safe to close: everything has reached headquarters",
    shift_wait: "Not yet:", shift_wait_tail: "entries have not reached headquarters",
    shift_standalone: "This store runs without headquarters",
  },
};

let lang = localStorage.getItem("lang") || "zh";
let token = sessionStorage.getItem("token");
let member = null;
let saleKey = null;
let topupKey = null;
let lastSync = null;
const $ = (id) => document.getElementById(id);
const t = (k) => (T[lang] && T[lang][k]) || T.zh[k] || k;

function newKey() {
  return "ui-" + Array.from(crypto.getRandomValues(new Uint32Array(4)), (n) => n.toString(16)).join("");
}

function applyLang() {
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
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
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-staff").focus();
}

function showTill() {
  $("login").hidden = true;
  $("till").hidden = false;
  $("lookup-phone").focus();
}

function showLink(s) {
  lastSync = s;
  const el = $("link");
  el.className = "link " + (s.link === "online" || s.link === "disabled" ? "online" : "offline");
  let text = t("link_" + s.link);
  if (s.backlog > 0) text += ` · ${t("backlog")} ${s.backlog} ${t("entries")}`;
  el.textContent = text;
}

async function refreshLink() {
  if ($("till").hidden) return;
  const s = await api("GET", "/api/v1/sync");
  if (s.ok) showLink(s.data);
}

async function showMember(m) {
  member = m;
  $("member").hidden = false;
  $("register").hidden = true;
  $("member-name").textContent = m.name;
  $("member-phone").textContent = m.phone_masked;
  $("member-tier").textContent = m.tier;
  const w = await api("GET", `/api/v1/members/${m.member_id}/wallet`);
  if (w.ok) {
    $("member-stored").textContent = yuan(w.data.stored_value.total);
    $("member-principal").textContent = yuan(w.data.stored_value.principal);
    $("member-bonus").textContent = yuan(w.data.stored_value.bonus);
    $("member-points").textContent = w.data.points.balance;
  }
}

function clearMember() {
  member = null;
  $("member").hidden = true;
  $("register").hidden = true;
  $("lookup-phone").value = "";
  $("sale-stored").checked = false;
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

$("lookup").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("member-error").textContent = "";
  const phone = $("lookup-phone").value.trim();
  const r = await api("GET", "/api/v1/members/lookup?phone=" + encodeURIComponent(phone));
  if (r.ok) { await showMember(r.data); $("sale-amount").focus(); return; }
  if (r.status === 404) { member = null; $("member").hidden = true; $("register").hidden = false; $("register-name").focus(); return; }
  $("member-error").textContent = said(r.data);
});

$("register").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("POST", "/api/v1/members", { name: $("register-name").value.trim(), phone: $("lookup-phone").value.trim() }, newKey());
  if (!r.ok) { $("member-error").textContent = said(r.data); return; }
  $("register-name").value = "";
  await showMember(r.data);
  $("sale-amount").focus();
});

$("member-clear").addEventListener("click", clearMember);

// A changed sale is a new sale: a new key.
["sale-amount", "sale-cash", "sale-stored"].forEach((id) => $(id).addEventListener("input", () => { saleKey = null; }));
$("sale").addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = $("sale-submit");
  if (button.disabled) return;
  $("sale-error").textContent = "";
  const body = { amount: { amount: $("sale-amount").value.trim() } };
  if (member) body.member_id = member.member_id;
  if ($("sale-stored").checked) {
    if (!member) { $("sale-error").textContent = t("need_member"); return; }
    body.pay_with = "stored_value";
    if ($("sale-password").value) body.password = $("sale-password").value;
  } else if ($("sale-cash").value.trim()) {
    body.cash_tendered = { amount: $("sale-cash").value.trim() };
  }
  saleKey = saleKey || newKey();
  button.disabled = true;
  const r = await api("POST", "/api/v1/checkouts/quick", body, saleKey);
  button.disabled = false;
  if (!r.ok) {
    $("sale-error").textContent = said(r.data);
    // The member's payment password is asked for, or was wrong: ask the member to type it.
    if (r.data.code === "password_required" || r.data.code === "password_wrong") {
      $("sale-password-row").hidden = false;
      $("sale-password").value = "";
      $("sale-password").focus();
      saleKey = null;
    }
    return;
  }
  $("sale-password-row").hidden = true;
  $("sale-password").value = "";
  const cash = (r.data.tenders || []).find((x) => x.kind === "cash");
  $("paid").hidden = false;
  $("paid-amount").textContent = yuan(r.data.amount);
  $("paid-change").textContent = cash ? yuan(cash.change) : "¥0.00";
  $("receipt").dataset.sale = r.data.sale_id;
  $("sale-amount").value = "";
  $("sale-cash").value = "";
  saleKey = null;
  if (member) showMember(member);
  refreshLink();
  $("sale-amount").focus();
});

// The receipt page needs the session too: fetch it and open it to print.
document.querySelectorAll("a.receipt").forEach((a) => a.addEventListener("click", async (e) => {
  e.preventDefault();
  const r = await api("GET", `/api/v1/sales/${e.target.dataset.sale}/receipt?paper=80&format=html`);
  const url = URL.createObjectURL(new Blob([r.data.text || ""], { type: "text/html" }));
  window.open(url, "_blank");
}));

["topup-amount", "topup-rule"].forEach((id) => $(id).addEventListener("input", () => { topupKey = null; }));
$("topup").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("topup-error").textContent = "";
  if (!member) { $("topup-error").textContent = t("need_member"); return; }
  const body = { amount: { amount: $("topup-amount").value.trim() } };
  if ($("topup-rule").value.trim()) body.rule = $("topup-rule").value.trim();
  topupKey = topupKey || newKey();
  const r = await api("POST", `/api/v1/members/${member.member_id}/top-ups`, body, topupKey);
  if (!r.ok) { $("topup-error").textContent = said(r.data); return; }
  topupKey = null;
  $("topup-amount").value = "";
  $("topup-done").textContent = `${t("topped_up")} ${yuan(r.data.stored_value.total)}`;
  showMember(member);
});

// 商品结账: scanned lines (a barcode scanner types digits and Enter), priced by the node's own
// quote line by line as they come, then paid by any mix of points, stored value, card and cash.
let basket = []; // [{code, barcode: bool, qty, name}]
let basketKey = null;

async function requote() {
  basketKey = null;
  const body = $("basket").querySelector("tbody");
  body.innerHTML = "";
  if (!basket.length) {
    ["basket-subtotal", "basket-discount", "basket-due"].forEach((id) => { $(id).textContent = "¥0.00"; });
    $("basket-points").textContent = "0";
    return;
  }
  const q = { lines: basketLines(), points: parseInt($("pay-points").value || "0", 10) || 0 };
  if (member) q.member_id = member.member_id;
  const r = await api("POST", "/api/v1/checkouts/quote", q);
  if (!r.ok) { $("pay-error").textContent = said(r.data); return; }
  $("pay-error").textContent = "";
  r.data.lines.forEach((l, i) => {
    const tr = document.createElement("tr");
    const steps = l.steps.map((s) => `${s.note} -${s.off.amount}`).join("；");
    [basket[i].name || l.sku, l.qty, l.unit_price.amount, steps, l.net.amount].forEach((v) => {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    });
    body.appendChild(tr);
  });
  $("basket-subtotal").textContent = yuan(r.data.subtotal);
  $("basket-discount").textContent = yuan(r.data.discount);
  $("basket-due").textContent = yuan(r.data.due);
  $("basket-points").textContent = r.data.points_earned;
}

function basketLines() {
  return basket.map((l) => (l.barcode ? { barcode: l.code, qty: String(l.qty) } : { sku: l.code, qty: String(l.qty) }));
}

$("scan").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("scan-code").value.trim();
  $("scan-code").value = "";
  if (!code) return;
  const barcode = /^\d{8,14}$/.test(code);
  const found = basket.find((l) => l.code === code);
  if (found) { found.qty += 1; await requote(); return; }
  const p = await api("GET", barcode ? "/api/v1/products?barcode=" + code : "/api/v1/products/" + encodeURIComponent(code));
  if (!p.ok) { $("pay-error").textContent = said(p.data); return; }
  basket.push({ code, barcode, qty: 1, name: p.data.name });
  $("items-paid").hidden = true;
  await requote();
});

$("basket-clear").addEventListener("click", () => { basket = []; requote(); $("scan-code").focus(); });
$("pay-points").addEventListener("change", requote);
["pay-stored", "pay-card", "pay-card-ref", "pay-cash"].forEach((id) => $(id).addEventListener("input", () => { basketKey = null; }));

$("pay").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!basket.length || $("pay-submit").disabled) return;
  const tenders = [];
  const v = (id) => $(id).value.trim();
  if (v("pay-stored")) tenders.push({ kind: "stored_value", amount: { amount: v("pay-stored") } });
  if (v("pay-card")) tenders.push({ kind: "card", amount: { amount: v("pay-card") }, reference: v("pay-card-ref") });
  if (v("pay-cash")) tenders.push({ kind: "cash", tendered: { amount: v("pay-cash") } });
  const body = { lines: basketLines(), tenders, points: parseInt(v("pay-points") || "0", 10) || 0 };
  if (member) body.member_id = member.member_id;
  if ($("pay-password").value) body.password = $("pay-password").value;
  basketKey = basketKey || newKey();
  $("pay-submit").disabled = true;
  const r = await api("POST", "/api/v1/checkouts/items", body, basketKey);
  $("pay-submit").disabled = false;
  if (!r.ok) {
    $("pay-error").textContent = said(r.data);
    if (r.data.code === "password_required" || r.data.code === "password_wrong") {
      $("pay-password-row").hidden = false;
      $("pay-password").value = "";
      $("pay-password").focus();
      basketKey = null;
    }
    return;
  }
  const cash = (r.data.tenders || []).find((x) => x.kind === "cash");
  $("items-paid").hidden = false;
  $("items-paid-amount").textContent = yuan(r.data.due);
  $("items-paid-change").textContent = cash ? yuan(cash.change) : "¥0.00";
  $("items-receipt").dataset.sale = r.data.sale_id;
  ["pay-points", "pay-stored", "pay-card", "pay-card-ref", "pay-cash", "pay-password"].forEach((id) => { $(id).value = ""; });
  $("pay-password-row").hidden = true;
  $("pay-error").textContent = "";
  basket = [];
  await requote();
  if (member) showMember(member);
  refreshLink();
  $("scan-code").focus();
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
  const focus = { F2: "lookup-phone", F4: "sale-amount", F6: "topup-amount", F8: "scan-code" }[e.key];
  if (focus && !$("till").hidden) { e.preventDefault(); $(focus).focus(); }
  if (e.key === "Escape" && !$("till").hidden) clearMember();
});

(async function start() {
  applyLang();
  const h = await api("GET", "/api/v1/health");
  if (h.ok) {
    $("store").textContent = `${h.data.store_name} · ${h.data.store_id}`;
    document.title = `${t("title")} · ${h.data.store_name}`;
  }
  const s = await api("GET", "/api/v1/sync"); // also tells whether a login is needed
  if (s.ok) { showTill(); showLink(s.data); }
  setInterval(refreshLink, 3000);
})();
