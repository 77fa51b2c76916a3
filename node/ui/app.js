// 收银台: the cashier's page, served by the store's node. Keyboard first: F2 member, F4 sale,
// F6 top-up, F8 items, F9 returns, Enter submits, Esc drops the member. Every write carries an
// idempotency key made once per sale, so a double press of Enter or of 结账 is one sale. An
// error the node ties to a field is shown next to that field, and nothing is saved.
"use strict";

const T = {
  zh: {
    open_mode: "演示模式：本店员工设置登录密码之前，任何人无需登录即可操作（正式使用请关闭 open_before_logins）",
    title: "收银台", link_online: "在线", link_offline: "离线", link_connecting: "连接中",
    link_disabled: "单店运行", link_refused: "总部拒绝连接", rights_fenced: "本店已被总部冻结：储值/积分/次卡暂停", rights_lease: "离线超期：储值/积分/次卡暂停，现金照常", clock_fixed: "本机时钟不准，已按总部时间", cert_days: "门店证书剩余天数", renew_refused: "总部未能续期", refused_why: "总部拒绝", backlog: "待同步", entries: "条", restoring: "正在从总部恢复本店数据，完成前不能记账", backups: "数据备份", backup_now: "立即备份", backup_none: "还没有备份", backup_damaged: "已损坏", backup_records: "条记录", backup_every: "每 {h} 小时自动备份，保留 {n} 份", restoring_wait: "等待连上总部恢复本店数据，完成前不能记账",
    logout: "退出", login: "员工登录", staff_id: "员工编号", password: "密码 / PIN",
    login_button: "登录", member: "会员", phone: "手机号", find_by: "手机号 / 卡号 / 姓名",
    find: "查找", stored_value: "储值", principal: "本金", bonus: "赠送", points: "积分",
    clear_member: "不用会员", member_page: "会员详情", not_found: "没有这个会员，登记为新会员：",
    name: "姓名", register: "登记", checkout: "收银", amount: "金额 (元)",
    tendered: "实收现金 (元)", pay_stored: "储值支付", pay: "结账", paid: "已收款",
    change: "找零", receipt: "打印小票", top_up: "储值充值", offer: "活动", no_offer: "不参加活动",
    top_up_button: "充值", topped_up: "充值成功，储值余额", need_member: "请先查找会员",
    member_password: "支付密码", role_cashier: "收银员", role_manager: "店长",
    wallet_partial: "本店尚未取到该会员在其他门店的记录：余额可能不全，暂不能用储值支付",
    role_hq_admin: "总部管理员", role_auditor: "审计", items: "商品结账", scan: "扫码 / 商品编码",
    add: "加入", clear_basket: "清空", hold: "挂单", recall: "取单", product: "商品", qty: "数量",
    unit_price: "单价", steps: "优惠", line_net: "小计", subtotal: "原价", discount: "优惠",
    due: "应付", points_earned: "本单积分", coupon: "优惠券", no_coupon: "不用券",
    use_points: "积分抵现", pay_stored_amount: "储值支付 (元)", pay_wechat: "微信 (元)",
    pay_alipay: "支付宝 (元)", pay_card: "银行卡 (元)", card_ref: "支付单号",
    shift_check: "交班检查", shift_ok: "可以交班：本店记录已全部送达总部", shift_wait: "暂不宜交班：尚有",
    shift_wait_tail: "条记录未送达总部", shift_standalone: "本店未连接总部（单店运行）",
    close: "关闭", edit_member: "修改资料", card_no: "会员卡号", birthday: "生日", tier: "等级", tier_reason: "改等级原因（店长，必填）",
    notes: "备注", save: "保存", saved: "已保存", cards: "卡项", card_name: "卡名", card_kind: "类型",
    count_card: "计次卡", period_card: "期限卡", card_uses: "次数", valid_to: "有效期至",
    price: "售价 (元)", sell_card: "售卡", use_once: "核销一次", uses_left: "剩余", times: "次",
    coupons: "优惠券", campaign: "活动", some_goods: "限指定商品", use_coupon: "用券", usable: "可用", used: "已用", not_valid_today: "未到期或已过期",
    recent_sales: "最近消费", returned: "已退", return_it: "退货", returns: "退货", sale_id: "小票号",
    reason: "原因", return_button: "退货", refunded: "已退款", return_qty: "退货数量", held_note: "挂单",
    nothing_held: "没有挂单", lines: "件", manager_actions: "店长操作",
    adjust_points: "调整积分（正数加，负数减）", adjust: "调整",
    new_password: "设置 / 重置支付密码（6 位数字）", password_saved: "支付密码已设置",
  },
  en: {
    open_mode: "Demo mode: anyone may use this till without a login until its staff have one (turn open_before_logins off for real use)",
    title: "Till", link_online: "online", link_offline: "offline", link_connecting: "connecting",
    link_disabled: "standalone", link_refused: "refused by HQ", rights_fenced: "store fenced by HQ: stored value, points and cards paused", rights_lease: "offline too long: stored value, points and cards paused, cash goes on", clock_fixed: "PC clock wrong: using headquarters' time", cert_days: "store certificate days left", renew_refused: "HQ did not renew it", refused_why: "refused by HQ", backlog: "to sync", restoring: "restoring this store's data from HQ: nothing can be recorded until done", backups: "Backups", backup_now: "Back up now", backup_none: "no backup yet", backup_damaged: "damaged", backup_records: "records", backup_every: "a backup every {h} hours, {n} kept", restoring_wait: "waiting for HQ to restore this store's data: nothing can be recorded until done",
    entries: "entries", logout: "Log out", login: "Staff login", staff_id: "Staff ID",
    password: "Password / PIN", login_button: "Log in", member: "Member", phone: "Phone",
    find_by: "Phone / card / name", find: "Find", stored_value: "Stored value",
    wallet_partial: "This store has not yet had this member's records from other stores: the balance may be short, and stored value cannot pay yet",
    principal: "principal", bonus: "bonus", points: "Points", clear_member: "No member",
    member_page: "Member page", not_found: "No such member. Register:", name: "Name",
    register: "Register", checkout: "Checkout", amount: "Amount (CNY)",
    tendered: "Cash handed over (CNY)", pay_stored: "Pay from stored value", pay: "Pay",
    paid: "Paid", change: "Change", receipt: "Print receipt", top_up: "Top up", offer: "Offer",
    no_offer: "No offer", top_up_button: "Top up", topped_up: "Topped up; stored value now",
    need_member: "Find the member first", member_password: "Payment password",
    role_cashier: "cashier", role_manager: "manager", role_hq_admin: "HQ admin",
    role_auditor: "auditor", items: "Item checkout", scan: "Scan / SKU", add: "Add",
    clear_basket: "Clear", hold: "Hold", recall: "Recall", product: "Product", qty: "Qty",
    unit_price: "Price", steps: "Discounts", line_net: "Line", subtotal: "Subtotal",
    discount: "Discount", due: "Due", points_earned: "Points earned", coupon: "Coupon",
    no_coupon: "No coupon", use_points: "Points to use", pay_stored_amount: "Stored value (CNY)",
    pay_wechat: "WeChat Pay (CNY)", pay_alipay: "Alipay (CNY)", pay_card: "Card (CNY)",
    card_ref: "Payment ref.", shift_check: "Close shift?",
    shift_ok: "Safe to close: everything has reached headquarters", shift_wait: "Not yet:",
    shift_wait_tail: "entries have not reached headquarters",
    shift_standalone: "This store runs without headquarters", close: "Close",
    edit_member: "Edit", card_no: "Card no.", birthday: "Birthday", tier: "Tier", tier_reason: "Reason for a tier change (manager)", notes: "Notes",
    save: "Save", saved: "Saved", cards: "Cards", card_name: "Card name", card_kind: "Kind",
    count_card: "Count card", period_card: "Period card", card_uses: "Uses", valid_to: "Valid to",
    price: "Price (CNY)", sell_card: "Sell card", use_once: "Use once", uses_left: "left",
    times: "", coupons: "Coupons", campaign: "campaign", some_goods: "some goods only", use_coupon: "Use", usable: "usable", used: "used",
    not_valid_today: "not valid today", recent_sales: "Recent sales", returned: "returned",
    return_it: "Return", returns: "Returns", sale_id: "Sale no.", reason: "Reason",
    return_button: "Return", refunded: "Refunded", return_qty: "Qty back", held_note: "Held",
    nothing_held: "Nothing held", lines: "items", manager_actions: "Manager",
    adjust_points: "Adjust points (+ adds, − takes)", adjust: "Adjust",
    new_password: "Set / reset payment password (6 digits)", password_saved: "Payment password set",
  },
};

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
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-staff").focus();
}

function showTill() {
  $("login").hidden = true;
  $("till").hidden = false;
  $("lookup-phone").focus();
  loadRules();
  loadBackups();
}

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

async function showMember(m) {
  member = m;
  $("member").hidden = false;
  $("register").hidden = true;
  $("member-results").hidden = true;
  $("member-name").textContent = m.name;
  $("member-phone").textContent = m.phone_masked;
  $("member-tier").textContent = m.tier;
  $("member-tier-next").textContent = "";
  showCard(m);
  showTierNext(m.member_id);
  const w = await api("GET", `/api/v1/members/${m.member_id}/wallet`);
  if (w.ok) {
    $("member-stored").textContent = yuan(w.data.stored_value.total);
    $("member-principal").textContent = yuan(w.data.stored_value.principal);
    $("member-bonus").textContent = yuan(w.data.stored_value.bonus);
    $("member-points").textContent = w.data.points.balance;
    $("member-partial").hidden = w.data.whole !== false;
    member.wallet = w.data;
  }
  await loadCoupons();
  if (!$("member-page").hidden) await memberPage();
}

function clearMember() {
  member = null;
  $("member").hidden = true;
  $("register").hidden = true;
  $("member-results").hidden = true;
  $("member-page").hidden = true;
  $("lookup-phone").value = "";
  $("sale-stored").checked = false;
  fillCoupons([]);
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

// 查找会员: a whole phone number is looked up (and offered for registration when unknown);
// anything else is searched by name, phone tail or card number, phones masked.
$("lookup").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("member-error").textContent = "";
  const text = $("lookup-phone").value.trim();
  if (/^(\+\d{6,15}|1\d{10})$/.test(text)) {
    const r = await api("GET", "/api/v1/members/lookup?phone=" + encodeURIComponent(text));
    if (r.ok) { await showMember(r.data); $("sale-amount").focus(); return; }
    if (r.status === 404) {
      member = null;
      $("member").hidden = true;
      $("register").hidden = false;
      $("register-phone").value = text;
      $("register-name").focus();
      return;
    }
    $("member-error").textContent = said(r.data);
    return;
  }
  const r = await api("GET", "/api/v1/members/search?q=" + encodeURIComponent(text));
  if (!r.ok) { $("member-error").textContent = said(r.data); return; }
  const found = r.data.members;
  if (found.length === 1) { await openMember(found[0].member_id); return; }
  const list = $("member-results");
  list.innerHTML = "";
  list.hidden = false;
  if (!found.length) {
    const li = document.createElement("li");
    li.textContent = t("not_found").replace(/[，,].*$/, "");
    list.appendChild(li);
    return;
  }
  for (const m of found) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${m.name} ${m.phone_masked} ${m.tier}${m.card_no ? " · " + m.card_no : ""}`;
    b.addEventListener("click", () => openMember(m.member_id));
    li.appendChild(b);
    list.appendChild(li);
  }
  list.querySelector("button").focus();
});

async function openMember(id) {
  const r = await api("GET", `/api/v1/members/${id}`);
  if (!r.ok) { $("member-error").textContent = said(r.data); return; }
  await showMember(r.data);
  $("sale-amount").focus();
}

$("register").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("register");
  const body = { name: $("register-name").value.trim(), phone: $("register-phone").value.trim() };
  const r = await api("POST", "/api/v1/members", body, newKey());
  if (!r.ok) { showError(form, "member-error", r.data); return; }
  clearErrors(form);
  $("register-name").value = "";
  $("member-error").textContent = "";
  await showMember(r.data);
  $("sale-amount").focus();
});

$("member-clear").addEventListener("click", clearMember);
$("member-open").addEventListener("click", async () => { $("member-page").hidden = false; await showMember(member); $("edit-name").focus(); });
$("member-close").addEventListener("click", () => { $("member-page").hidden = true; });

// 会员详情: the profile to edit, cards (sell, use), coupons, recent sales (return one).
async function memberPage() {
  if (!member) return;
  const [m, sales] = await Promise.all([
    api("GET", `/api/v1/members/${member.member_id}`),
    api("GET", `/api/v1/members/${member.member_id}/sales?limit=10`),
  ]);
  if (m.ok) {
    $("page-name").textContent = `${m.data.name} ${m.data.phone_masked}`;
    $("edit-name").value = m.data.name;
    $("edit-card").value = m.data.card_no || "";
    // A card in use changes by 补卡 (below), not by an edit.
    $("edit-card").readOnly = !!m.data.card_no;
    $("edit-birthday").value = m.data.birthday || "";
    $("edit-tier").value = m.data.tier;
    $("edit-tier-reason").value = "";
    $("edit-notes").value = m.data.notes;
  }
  const cards = $("cards").querySelector("tbody");
  cards.innerHTML = "";
  for (const c of (member.wallet && member.wallet.cards) || []) {
    const tr = document.createElement("tr");
    cell(tr, c.name);
    if (c.kind === "timed") { timedRow(tr, c); cards.appendChild(tr); continue; }
    cell(tr, c.kind === "count" ? `${t("uses_left")} ${c.uses_left} ${t("times")}` : `${c.valid_from} ~ ${c.valid_to}`);
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = t("use_once");
    b.disabled = !c.usable_today;
    b.addEventListener("click", async () => {
      const r = await api("POST", `/api/v1/members/${member.member_id}/cards/${c.card_id}/uses`, { uses: 1 }, keyFor("use-" + c.card_id));
      if (r.ok) keyDone("use-" + c.card_id);
      $("card-error").textContent = r.ok ? "" : said(r.data);
      await showMember(member);
    });
    cell(tr, "").appendChild(b);
    cards.appendChild(tr);
  }
  const recent = $("recent").querySelector("tbody");
  recent.innerHTML = "";
  for (const s of (sales.ok && sales.data.sales) || []) {
    const tr = document.createElement("tr");
    cell(tr, s.business_date);
    cell(tr, s.sale_id);
    cell(tr, s.store_id);
    cell(tr, yuan(s.due || s.amount));
    // A quick sale comes back whole; an item sale is done when every line is back.
    const done = s.returned_by || (s.lines && s.lines.every((l, i) => parseFloat((s.returned || [])[i] || "0") >= parseFloat(l.qty)));
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = done ? t("returned") : t("return_it");
    b.disabled = !!done;
    b.addEventListener("click", async () => { $("return-sale").value = s.sale_id; await listReturnLines(); $("return-reason").focus(); });
    cell(tr, "").appendChild(b);
    recent.appendChild(tr);
  }
}

// 会员等级: how far the next tier is, from the sales this store knows of.
async function showTierNext(id) {
  const r = await api("GET", `/api/v1/members/${id}/tier`);
  if (!r.ok || !r.data.next || !member || member.member_id !== id) return;
  const n = r.data.next;
  const spend = r.data.basis === "spend";
  $("member-tier-next").textContent = lang === "zh"
    ? (spend ? `再消费 ¥${n.short} 升${n.name}` : `再积 ${n.short} 分升${n.name}`)
    : (spend ? `¥${n.short} more to ${n.name}` : `${n.short} more points to ${n.name}`);
}

function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }

$("edit").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("edit");
  const body = {
    name: $("edit-name").value.trim(),
    card_no: $("edit-card").value.trim() || null,
    birthday: $("edit-birthday").value || null,
    tier: $("edit-tier").value.trim(),
    notes: $("edit-notes").value,
  };
  const reason = $("edit-tier-reason").value.trim();
  if (reason) body.tier_reason = reason;
  const r = await api("PATCH", `/api/v1/members/${member.member_id}`, body, newKey());
  $("edit-done").textContent = "";
  if (!r.ok) { showError(form, "edit-error", r.data); return; }
  clearErrors(form);
  $("edit-error").textContent = "";
  await showMember(r.data);
  $("edit-done").textContent = t("saved");
});

$("sell-card").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("sell-card");
  if (!member) { $("card-error").textContent = t("need_member"); return; }
  const kind = $("card-kind").value;
  const body = { name: $("card-name").value.trim(), kind, price: { amount: $("card-price").value.trim() || "0" } };
  if (kind === "count") body.uses = parseInt($("card-uses").value, 10) || 0;
  if (kind === "timed") body.minutes = parseInt($("card-uses").value, 10) || 0;
  if (kind === "period") body.valid_from = new Intl.DateTimeFormat("sv-SE").format(new Date());
  if ($("card-to").value) body.valid_to = $("card-to").value;
  const r = await api("POST", `/api/v1/members/${member.member_id}/cards`, body, keyFor("sell-card"));
  if (!r.ok) { showError(form, "card-error", r.data); return; }
  keyDone("sell-card");
  clearErrors(form);
  $("card-error").textContent = "";
  ["card-name", "card-uses", "card-to", "card-price"].forEach((id) => { $(id).value = ""; });
  await showMember(member);
});

// 店长操作: points by hand with a reason, and the member's payment password set or reset (the
// node lets only a manager reset one, or adjust points).
$("adjust").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("adjust");
  const body = { points: parseInt($("adjust-points").value, 10) || 0, reason: $("adjust-reason").value.trim() };
  const r = await api("POST", `/api/v1/members/${member.member_id}/points`, body, keyFor("adjust"));
  if (!r.ok) { showError(form, "adjust-error", r.data); return; }
  keyDone("adjust");
  clearErrors(form);
  $("adjust-error").textContent = "";
  $("adjust-points").value = "";
  $("adjust-reason").value = "";
  await showMember(member);
});

$("member-password").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("member-password");
  $("member-password-done").textContent = "";
  const r = await api("PUT", `/api/v1/members/${member.member_id}/password`, { password: $("member-password-new").value }, newKey());
  $("member-password-new").value = "";
  if (!r.ok) { showError(form, "member-password-error", r.data); return; }
  clearErrors(form);
  $("member-password-error").textContent = "";
  $("member-password-done").textContent = t("password_saved");
});

// 优惠券: the member's coupons, usable ones offered at the basket.
async function loadCoupons() {
  if (!member) return;
  const r = await api("GET", `/api/v1/members/${member.member_id}/coupons`);
  const coupons = (r.ok && r.data.coupons) || [];
  fillCoupons(coupons);
  const body = $("coupons").querySelector("tbody");
  body.innerHTML = "";
  for (const c of coupons) {
    const tr = document.createElement("tr");
    const limited = c.scope && (c.scope.skus.length || c.scope.categories.length) ? ` · ${t("some_goods")}` : "";
    cell(tr, c.campaign ? `${c.name}（${t("campaign")} ${c.campaign}${limited}）` : c.name + limited);
    cell(tr, `${c.valid_from} ~ ${c.valid_to}`);
    cell(tr, t(c.state));
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = t("use_coupon");
    b.disabled = c.state !== "usable";
    b.addEventListener("click", () => { $("pay-coupon").value = c.coupon_id; requote(); $("scan-code").focus(); });
    cell(tr, "").appendChild(b);
    body.appendChild(tr);
  }
}

function fillCoupons(coupons) {
  const select = $("pay-coupon");
  select.querySelectorAll("option:not([value=''])").forEach((o) => o.remove());
  for (const c of coupons.filter((c) => c.state === "usable")) {
    const o = document.createElement("option");
    o.value = c.coupon_id;
    o.textContent = c.name;
    select.appendChild(o);
  }
}

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
  $("paid").querySelectorAll("a.receipt").forEach((a) => { a.dataset.sale = r.data.sale_id; });
  $("sale-amount").value = "";
  $("sale-cash").value = "";
  saleKey = null;
  if (member) showMember(member);
  refreshLink();
  $("sale-amount").focus();
});

// The receipt page (80 mm, or 58 mm) needs the session too: fetch it and open it to print.
document.querySelectorAll("a.receipt").forEach((a) => a.addEventListener("click", async (e) => {
  e.preventDefault();
  const paper = e.target.dataset.paper || "80";
  const r = await api("GET", `/api/v1/sales/${e.target.dataset.sale}/receipt?paper=${paper}&format=html`);
  const url = URL.createObjectURL(new Blob([r.data.text || ""], { type: "text/html" }));
  window.open(url, "_blank");
}));

$("topup-amount").addEventListener("input", () => { topupKey = null; pickRule(); });
$("topup-rule").addEventListener("change", () => { topupKey = null; });
$("topup").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("topup");
  $("topup-error").textContent = "";
  if (!member) { $("topup-error").textContent = t("need_member"); return; }
  const body = { amount: { amount: $("topup-amount").value.trim() } };
  if ($("topup-rule").value) body.rule = $("topup-rule").value;
  topupKey = topupKey || newKey();
  const r = await api("POST", `/api/v1/members/${member.member_id}/top-ups`, body, topupKey);
  if (!r.ok) { showError(form, "topup-error", r.data); return; }
  clearErrors(form);
  topupKey = null;
  $("topup-amount").value = "";
  $("topup-rule").value = "";
  $("topup-done").textContent = `${t("topped_up")} ${yuan(r.data.stored_value.total)}`;
  showMember(member);
});

// 商品结账: scanned lines (a barcode scanner types digits and Enter), priced by the node's own
// quote line by line as they come, then paid by any mix of points, stored value, WeChat,
// Alipay, card and cash. 挂单 parks the basket at this store; 取单 brings one back.
let basket = []; // [{code, barcode: bool, qty, name}]
let basketKey = null;
let heldOrder = null;

async function requote() {
  basketKey = null;
  keyDone("hold");
  const body = $("basket").querySelector("tbody");
  body.innerHTML = "";
  if (!basket.length) {
    ["basket-subtotal", "basket-discount", "basket-due"].forEach((id) => { $(id).textContent = "¥0.00"; });
    $("basket-points").textContent = "0";
    return;
  }
  const q = { lines: basketLines(), points: parseInt($("pay-points").value || "0", 10) || 0 };
  if (member) q.member_id = member.member_id;
  if ($("pay-coupon").value) q.coupon = $("pay-coupon").value;
  const r = await api("POST", "/api/v1/checkouts/quote", q);
  if (!r.ok) { $("pay-error").textContent = said(r.data); return; }
  $("pay-error").textContent = "";
  r.data.lines.forEach((l, i) => {
    const tr = document.createElement("tr");
    const steps = l.steps.map((s) => `${s.note} -${s.off.amount}`).join("；");
    [basket[i].name || l.sku, l.qty, l.unit_price.amount, steps, l.net.amount].forEach((v) => cell(tr, v));
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

function clearBasket() {
  basket = [];
  heldOrder = null;
  $("pay-coupon").value = "";
  requote();
}

$("basket-clear").addEventListener("click", () => { clearBasket(); $("scan-code").focus(); });
$("pay-points").addEventListener("change", requote);
$("pay-coupon").addEventListener("change", requote);
["pay-stored", "pay-wechat", "pay-alipay", "pay-card", "pay-card-ref", "pay-cash"].forEach((id) => $(id).addEventListener("input", () => { basketKey = null; }));

$("basket-hold").addEventListener("click", async () => {
  if (!basket.length) return;
  const body = { lines: basket.map((l) => ({ [l.barcode ? "barcode" : "sku"]: l.code, qty: String(l.qty) })), points: parseInt($("pay-points").value || "0", 10) || 0 };
  if (member) body.member_id = member.member_id;
  if ($("pay-coupon").value) body.coupon = $("pay-coupon").value;
  const r = await api("POST", "/api/v1/orders/held", body, keyFor("hold"));
  if (!r.ok) { $("pay-error").textContent = said(r.data); return; }
  keyDone("hold");
  clearBasket();
  clearMember();
  $("scan-code").focus();
});

$("basket-recall").addEventListener("click", async () => {
  const r = await api("GET", "/api/v1/orders/held");
  const list = $("held");
  list.innerHTML = "";
  list.hidden = false;
  const orders = (r.ok && r.data.orders) || [];
  if (!orders.length) {
    const li = document.createElement("li");
    li.textContent = t("nothing_held");
    list.appendChild(li);
    return;
  }
  for (const o of orders) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    const at = new Date(o.held_at_ms).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en");
    b.textContent = `${t("held_note")} ${at} · ${o.lines.length} ${t("lines")} · ${yuan(o.due_now)}`;
    b.addEventListener("click", () => recall(o));
    li.appendChild(b);
    list.appendChild(li);
  }
  list.querySelector("button").focus();
});

async function recall(o) {
  $("held").hidden = true;
  if (o.member_id) await openMember(o.member_id); else clearMember();
  basket = [];
  for (const l of o.lines) {
    const p = await api("GET", "/api/v1/products/" + encodeURIComponent(l.sku));
    basket.push({ code: l.sku, barcode: false, qty: parseFloat(l.qty), name: p.ok ? p.data.name : l.sku });
  }
  heldOrder = o.order_id;
  $("pay-points").value = o.points || "";
  if (o.coupon) $("pay-coupon").value = o.coupon;
  await requote();
  $("pay-cash").focus();
}

$("pay").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!basket.length || $("pay-submit").disabled) return;
  const tenders = [];
  const v = (id) => $(id).value.trim();
  const ref = v("pay-card-ref");
  if (v("pay-stored")) tenders.push({ kind: "stored_value", amount: { amount: v("pay-stored") } });
  if (v("pay-wechat")) tenders.push({ kind: "wechat", amount: { amount: v("pay-wechat") }, reference: ref });
  if (v("pay-alipay")) tenders.push({ kind: "alipay", amount: { amount: v("pay-alipay") }, reference: ref });
  if (v("pay-card")) tenders.push({ kind: "card", amount: { amount: v("pay-card") }, reference: ref });
  if (v("pay-cash")) tenders.push({ kind: "cash", tendered: { amount: v("pay-cash") } });
  const body = { lines: basketLines(), tenders, points: parseInt(v("pay-points") || "0", 10) || 0 };
  if (member) body.member_id = member.member_id;
  if ($("pay-coupon").value) body.coupon = $("pay-coupon").value;
  if (heldOrder) body.held_order = heldOrder;
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
  $("items-paid").querySelectorAll("a.receipt").forEach((a) => { a.dataset.sale = r.data.sale_id; });
  ["pay-points", "pay-stored", "pay-wechat", "pay-alipay", "pay-card", "pay-card-ref", "pay-cash", "pay-password"].forEach((id) => { $(id).value = ""; });
  $("pay-password-row").hidden = true;
  $("pay-error").textContent = "";
  clearBasket();
  if (member) showMember(member);
  refreshLink();
  $("scan-code").focus();
});

// 退货: a sale back the way it was paid (a manager's action; the node refuses others). An item
// sale's lines are listed with what is left of each, to take back in part.
let returning = null; // the sale whose lines are listed
async function listReturnLines() {
  const sale = $("return-sale").value.trim();
  const body = $("return-lines").querySelector("tbody");
  body.innerHTML = "";
  returning = null;
  $("return-lines").hidden = true;
  if (!sale) return;
  const r = await api("GET", `/api/v1/sales/${encodeURIComponent(sale)}`);
  if (!r.ok) { $("return-error").textContent = said(r.data); return; }
  $("return-error").textContent = "";
  returning = sale;
  if (!r.data.lines) return;
  r.data.lines.forEach((l, i) => {
    const left = parseFloat(l.qty) - parseFloat((r.data.returned || [])[i] || "0");
    const tr = document.createElement("tr");
    cell(tr, `${l.sku} × ${l.qty}`);
    cell(tr, l.net.amount);
    const input = document.createElement("input");
    input.value = String(left);
    input.dataset.line = i;
    input.inputMode = "decimal";
    cell(tr, "").appendChild(input);
    body.appendChild(tr);
  });
  $("return-lines").hidden = false;
}
$("return-sale").addEventListener("change", listReturnLines);
$("return").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("return");
  $("return-done").textContent = "";
  const sale = $("return-sale").value.trim();
  if (returning !== sale) { await listReturnLines(); if (!$("return-lines").hidden) return; }
  const body = { reason: $("return-reason").value.trim() };
  const qtys = [...$("return-lines").querySelectorAll("input")];
  if (!$("return-lines").hidden && qtys.length) {
    body.lines = qtys.filter((q) => parseFloat(q.value) > 0).map((q) => ({ line: Number(q.dataset.line), qty: q.value.trim() }));
  }
  const r = await api("POST", `/api/v1/sales/${encodeURIComponent(sale)}/returns`, body, keyFor("return"));
  if (!r.ok) { showError(form, "return-error", r.data); return; }
  keyDone("return");
  clearErrors(form);
  $("return-error").textContent = "";
  // A quick sale comes back whole; an item sale answers with its returns, the last one this.
  const back = r.data.returns && r.data.returns.length ? r.data.returns[r.data.returns.length - 1].amount : r.data.amount;
  $("return-done").textContent = `${t("refunded")} ${yuan(back)} · ${sale}`;
  $("return-sale").value = "";
  $("return-reason").value = "";
  $("return-lines").hidden = true;
  returning = null;
  if (member) showMember(member);
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
  const focus = { F2: "lookup-phone", F4: "sale-amount", F6: "topup-amount", F8: "scan-code", F9: "return-sale" }[e.key];
  if (focus && !$("till").hidden) { e.preventDefault(); $(focus).focus(); }
  if (e.key === "Escape" && !$("till").hidden) clearMember();
});

(async function start() {
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
})();

