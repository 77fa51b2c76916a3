// 连锁总部: headquarters' page, served by the hub. Today's and this month's sales per store
// with a daily chart (SVG drawn here, no chart library), every store's sync lag, and every
// sales report with its filters, exported as CSV or Excel.
"use strict";

const T = {
  zh: {
    backups: "数据备份", backup_now: "立即备份", backup_none: "还没有备份", backup_damaged: "已损坏", backup_every: "每 {h} 小时自动备份，保留 {n} 份", backup_line: "含 {stores} 家门店的流水 · {members} 位会员 · {size}",
    open_mode: "演示模式：总部管理员设置登录密码之前，任何人无需登录即可操作（正式使用请关闭 open_before_logins）",
    export_member: "导出", export_title: "导出该会员的个人信息（查阅复制）", erase_member: "删除", erase_title: "删除该会员的个人信息（被遗忘权）", erase_confirm: "删除后该会员的姓名、手机号等个人信息在总部和所有门店都无法恢复，消费记录保留。确定删除？", erased: "已删除该会员的个人信息", report_lost: "挂失", lost_title: "会员来电挂失：该卡在所有门店都不能再查找会员（仍可用手机号查找）；解挂、补卡、退卡请到门店办理", lost_confirm: "确认挂失这张会员卡？", reported_lost: "已挂失", card_state: "卡状态", card_active: "正常", card_lost: "已挂失", card_closed: "已退卡", title: "连锁总部", logout: "退出", login: "总部登录", staff_id: "员工编号", password: "密码",
    login_button: "登录", overview: "今日与本月", today: "今日销售", month: "本月销售",
    store: "门店", today_short: "今日", month_short: "本月", stores: "门店同步", link: "链路",
    behind: "落后条数", behind_s: "落后秒数", hold_state: "挂起/冻结", clock_off: "电脑时钟偏差", minutes: "分钟", hold: "挂起…", void_hold: "撤销挂起",
    certificate: "证书", revoke: "吊销…", revoked: "已吊销：该店现有证书在数秒内失效，重新签发证书后才能再连接。",
    revoke_risk: "吊销门店 {store} 的证书（如电脑被盗或更换）：该店现有证书立即失效，需重新签发证书（ops pki enrol）后才能再同步。不影响会员余额。\n原因（必填）：",
    on_hold_until: "挂起至", fenced: "已冻结", fenced_at: "冻结于第", after_fence: "冻结后又收到条数",
    fenced_hint: "总部已收回该店持有的会员余额；该店之后上传的销售照常入账，被重复使用的余额记为会员欠款（见储值负债·应收）",
    hold_risk: "挂起门店 {store}：若到期前该店仍未联网，总部将冻结它并收回它持有的会员储值、积分与次卡，供其他门店使用。\n风险：若该店只是断网仍在营业，它在离线期限内已收的会员余额可能被花两次，差额记为会员欠款（应收），不会丢失，但需追收。\n最早可于 {at} 冻结。",
    hold_hours: "挂起多少小时？", hold_reason: "挂起原因（必填）：", reports: "报表", from: "从", to: "到", by: "分组",
    show: "查询", sales: "笔", online: "在线", offline: "离线",
    role_hq_admin: "总部管理员", role_auditor: "审计", role_manager: "店长",
    more: "会员、储值与审计", kind: "报表", period_note: "（期间同上）",
    by_hour: "今日分时销售", member_search: "会员查询", search_by: "姓名 / 手机尾号 / 卡号",
    transfers: "调拨单", state: "状态", all: "全部", st_requested: "待审批", st_approved: "已审批",
    st_shipped: "在途", st_received: "已收货", st_rejected: "已驳回", st_cancelled: "已取消",
    transfer_id: "单号", route: "调出 → 调入", goods: "商品", discrepancy: "差异",
    sent: "发", got: "收", approve: "批准", reject: "驳回", rules: "会员规则", points_per_yuan: "每消费 1 元积分",
    by_category: "类别积分（每行：类别=每元积分）",
    multipliers: "积分倍数日（每行：名称,星期或日期,倍数）",
    top_ups: "充值赠送（每行：名称,充值满,赠送）", tiers: "等级折扣（每行：等级=折扣%）",
    overdraft_member: "离线透支：每位会员 (元)", overdraft_store: "离线透支：每店合计 (元)",
    overdraft_manager: "离线透支须店长确认",
    publish: "发布到所有门店", history: "变更记录", at: "时间", staff: "操作人", summary: "内容",
    published: "已发布，各门店联网后即生效", not_published: "尚未发布：各门店按本店配置（node.toml）执行",
    in_force: "现行规则", line_bad: "这一行格式不对", none_found: "没有找到",
  },
  en: {
    backups: "Backups", backup_now: "Back up now", backup_none: "no backup yet", backup_damaged: "damaged", backup_every: "a backup every {h} hours, {n} kept", backup_line: "logs of {stores} stores · {members} members · {size}",
    open_mode: "Demo mode: anyone may use headquarters without a login until an admin has one (turn open_before_logins off for real use)",
    export_member: "Export", export_title: "Export their personal data", erase_member: "Erase", erase_title: "Erase their personal data", erase_confirm: "Their name, phone and the rest become unreadable at headquarters and every store, for good; their sales stay. Erase?", erased: "Their personal data is erased", report_lost: "Report lost", lost_title: "The member called: the card finds no one at any store (they are still found by phone); finding it again, reissue and closing are done at a till", lost_confirm: "Report this card lost?", reported_lost: "Reported lost", card_state: "Card", card_active: "in use", card_lost: "reported lost", card_closed: "closed", title: "Headquarters", logout: "Log out", login: "HQ login", staff_id: "Staff ID",
    password: "Password", login_button: "Log in", overview: "Today and this month",
    today: "Sales today", month: "Sales this month", store: "Store", today_short: "Today",
    month_short: "Month", stores: "Store sync", link: "Link", behind: "Entries behind",
    behind_s: "Seconds behind", hold_state: "Hold / fence", clock_off: "PC clock off by", minutes: "min", hold: "Hold…", void_hold: "Void hold",
    certificate: "Certificate", revoke: "Revoke…", revoked: "Revoked: the store's certificates stop working within seconds; it syncs again once enrolled anew.",
    revoke_risk: "Revoke store {store}'s certificate (a stolen or replaced PC): it stops working at once; the store syncs again only with a new certificate (ops pki enrol). Member balances are not touched.\nReason (required):",
    on_hold_until: "on hold until", fenced: "fenced", fenced_at: "at entry", after_fence: "entries since",
    fenced_hint: "Headquarters took back the member balances this store held; what it uploads later is still booked, and balances used twice become what the member owes (liabilities, receivables)",
    hold_risk: "Hold store {store}: if it is still offline when the hold ends, headquarters fences it and takes back the member stored value, points and card uses it holds, for other stores to use.\nRisk: if the store is only cut off and still selling, member balances it took within its offline lease may be spent twice; the difference becomes what the member owes (a receivable), never lost, but to be collected.\nThe earliest it may be fenced: {at}.",
    hold_hours: "Hold for how many hours?", hold_reason: "Reason (required):", reports: "Reports", from: "From", to: "To", by: "Group by",
    show: "Show", sales: "sales", online: "online", offline: "offline",
    role_hq_admin: "HQ admin", role_auditor: "auditor", role_manager: "manager",
    more: "Members, stored value and audit", kind: "Report", period_note: "(the period above)",
    by_hour: "Today by hour", member_search: "Member search", search_by: "Name / phone tail / card",
    transfers: "Transfers", state: "State", all: "All", st_requested: "requested",
    st_approved: "approved", st_shipped: "in transit", st_received: "received",
    st_rejected: "rejected", st_cancelled: "cancelled", transfer_id: "No.", route: "From → to",
    goods: "Goods", discrepancy: "Discrepancy", sent: "sent", got: "got", approve: "Approve", reject: "Reject",
    rules: "Member rules", points_per_yuan: "Points per yuan",
    by_category: "Points by category (one per line: category=rate)",
    multipliers: "Multiplier days (name,weekday or day,factor)",
    top_ups: "Top-up bonuses (name,pay at least,bonus)", tiers: "Tier discounts (tier=percent)",
    overdraft_member: "Offline overdraft per member (CNY)",
    overdraft_store: "Offline overdraft per store (CNY)",
    overdraft_manager: "An offline overdraft needs the store manager", publish: "Publish to every store",
    history: "Changes", at: "When", staff: "By", summary: "What",
    published: "Published; each store applies it once it hears of it",
    not_published: "Not published yet: each store uses its own node.toml",
    in_force: "In force", line_bad: "this line is not in the right form", none_found: "none found",
  },
};
// Report columns in Chinese (English shows the API's field names).
const COLUMNS = {
  day: "日期", week: "周", month: "月份", store: "门店", hour: "时段", category: "类别",
  department: "部门", tender: "支付方式", sku: "商品编码", wallet: "门店", sales: "笔数",
  member_sales: "会员笔数", gross: "原价金额", discount: "优惠金额", net: "实收金额",
  returns: "退货笔数", returned: "退货金额", net_after_returns: "净额", qty: "数量",
  returned_qty: "退货数量", paid: "收款金额", times: "笔数", refunded: "退款金额",
  refunds: "退款笔数", top_ups: "充值笔数", top_up_paid: "充值金额", bonus_given: "赠送金额",
  cards_sold: "售卡张数", card_sales: "买卡金额", spent_principal: "卡内消费本金",
  spent_bonus: "卡内消费赠送", refunded_principal: "退储值本金", bonus_forfeited: "作废赠送",
  closings: "退卡张数", card_refunds: "退卡退次卡金额",
};
let lang = localStorage.getItem("hq-lang") || "zh";
let token = sessionStorage.getItem("hq-token");
const $ = (id) => document.getElementById(id);
const t = (k) => (T[lang] && T[lang][k]) || T.zh[k] || k;

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
  $("logout").hidden = true;
  $("login-staff").focus();
}

function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }

// The axis' top: the next 1, 2, 2.5 or 5 × 10ⁿ at or above the largest value.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}
const axisYuan = (v) => (v >= 10000 ? `¥${+(v / 10000).toFixed(1)}${lang === "zh" ? "万" : "0k"}` : `¥${+v.toFixed(v < 10 ? 1 : 0)}`);

// A bar chart as SVG: `points` are [label, yuan]; a y axis in yuan with gridlines, a label
// under every `every`th bar, and each bar's label and value on hover (a tooltip).
function bars(id, points, every) {
  const W = 640, H = 200, left = 64, right = 6, top = 10, bottom = 26;
  const max = niceMax(Math.max(0, ...points.map((p) => p[1])));
  const plotW = W - left - right, plotH = H - top - bottom;
  const w = plotW / Math.max(points.length, 1);
  const y = (v) => top + plotH - (v / max) * plotH;
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = max * f;
    return `<line x1="${left}" x2="${W - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/>` +
      `<text class="y" x="${left - 6}" y="${(y(v) + 5).toFixed(1)}">${axisYuan(v)}</text>`;
  });
  const svg = points.map(([label, v], i) => {
    const x = left + i * w;
    const tip = `${label} · ¥${v.toFixed(2)}`;
    return `<rect x="${(x + 1).toFixed(1)}" y="${y(v).toFixed(1)}" width="${Math.max(w - 2, 1).toFixed(1)}" height="${(top + plotH - y(v)).toFixed(1)}" data-tip="${tip}"><title>${tip}</title></rect>` +
      (i % every === 0 ? `<text class="x" x="${(x + w / 2).toFixed(1)}" y="${H - 6}">${label}</text>` : "");
  });
  const box = $(id);
  box.innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img">${grid.join("")}${svg.join("")}</svg><div class="tip" hidden></div>`;
  const tipBox = box.querySelector(".tip");
  box.onmousemove = (e) => {
    const tip = e.target.dataset && e.target.dataset.tip;
    tipBox.hidden = !tip;
    if (!tip) return;
    const r = box.getBoundingClientRect();
    tipBox.textContent = tip;
    tipBox.style.left = `${e.clientX - r.left + 12}px`;
    tipBox.style.top = `${e.clientY - r.top - 28}px`;
  };
  box.onmouseleave = () => { tipBox.hidden = true; };
}

// A bar per day of the month so far: `rows` are the report's rows by day.
function chart(rows, from, to) {
  const days = [];
  for (let d = new Date(from + "T00:00:00Z"); day(d) <= to; d = new Date(d.getTime() + 86400000)) days.push(day(d));
  const net = Object.fromEntries(rows.map((r) => [r.day, parseFloat(r.net.amount)]));
  bars("chart", days.map((d) => [d.slice(5), net[d] || 0]), 5);
}

// A bar per hour of today.
function hourChart(rows) {
  const net = Object.fromEntries(rows.map((r) => [Number(r.hour), parseFloat(r.net.amount)]));
  bars("chart-hours", Array.from({ length: 24 }, (_, h) => [String(h).padStart(2, "0"), net[h] || 0]), 3);
}

async function overview() {
  const [d, m, byDay, stores, byHour] = await Promise.all([
    api(`/api/v1/reports/sales?from=${today()}&to=${today()}&by=store`),
    api(`/api/v1/reports/sales?from=${monthStart()}&to=${today()}&by=store`),
    api(`/api/v1/reports/sales?from=${monthStart()}&to=${today()}&by=day`),
    api("/api/v1/stores"),
    api(`/api/v1/reports/sales?from=${today()}&to=${today()}&by=hour`),
  ]);
  if (!d.ok) return;
  const sum = (rows) => rows.reduce((a, r) => [a[0] + parseFloat(r.net_after_returns.amount), a[1] + r.sales], [0, 0]);
  const [dn, dc] = sum(d.data.rows);
  const [mn, mc] = sum(m.data.rows || []);
  $("today-net").textContent = "¥" + dn.toFixed(2);
  $("today-count").textContent = `${dc} ${t("sales")}`;
  $("month-net").textContent = "¥" + mn.toFixed(2);
  $("month-count").textContent = `${mc} ${t("sales")}`;
  chart(byDay.data.rows || [], monthStart(), today());
  hourChart((byHour.ok && byHour.data.rows) || []);
  const body = $("by-store").querySelector("tbody");
  body.innerHTML = "";
  const todayBy = Object.fromEntries(d.data.rows.map((r) => [r.store, r]));
  for (const r of m.data.rows || []) {
    const tr = document.createElement("tr");
    cell(tr, r.store);
    cell(tr, yuan(todayBy[r.store] && todayBy[r.store].net_after_returns));
    cell(tr, yuan(r.net_after_returns));
    body.appendChild(tr);
  }
  const sb = $("stores").querySelector("tbody");
  sb.innerHTML = "";
  for (const s of (stores.data.stores || [])) {
    const tr = document.createElement("tr");
    cell(tr, s.store_id);
    const link = cell(tr, t(s.connected ? "online" : "offline"));
    link.className = s.connected ? "online" : "offline";
    // A PC clock off by over a minute: the store goes by headquarters' time, but say so.
    if (s.clock_wrong) {
      const minutes = Math.round(s.clock_off_ms / 60000);
      link.textContent += ` · ${t("clock_off")} ${minutes > 0 ? "+" : ""}${minutes} ${t("minutes")}`;
      link.className = "offline";
    }
    cell(tr, s.entries_behind);
    cell(tr, s.seconds_behind);
    holdCell(tr, s);
    revokeCell(tr, s);
    sb.appendChild(tr);
  }
}

// Who acts: the session names them at the hub; an open headquarters (no logins yet) records
// the page itself.
const staffId = () => "hq-page";

// In the chain's time zone, whatever the browser's.
const when = (ms) => new Date(ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: "Asia/Shanghai" });

// 吊销证书: the store's certificates issued until now are refused from the next seconds on
// (a stolen or replaced PC); its balances are untouched (that is a hold).
function revokeCell(tr, s) {
  const td = cell(tr, "");
  const b = document.createElement("button");
  b.textContent = t("revoke");
  b.addEventListener("click", async () => {
    const reason = prompt(t("revoke_risk").replace("{store}", s.store_id), "");
    if (reason === null) return;
    const r = await api(`/api/v1/stores/${s.store_id}/revoke`, false, "POST", { reason }, { "X-Staff-Id": staffId() });
    alert(r.ok ? t("revoked") : said(r.data));
    overview();
  });
  td.appendChild(b);
}

// 挂起 / 冻结: a quiet store's hold, its fence, and what a hold risks, said before it is made.
function holdCell(tr, s) {
  const td = cell(tr, "");
  const fence = s.fence || {};
  if (fence.fenced) {
    td.className = "offline";
    td.textContent = `${t("fenced")} · ${t("fenced_at")} ${fence.fenced.at_seq}` +
      (s.entries_after_fence ? ` · ${t("after_fence")} ${s.entries_after_fence}` : "");
    td.title = t("fenced_hint");
    return;
  }
  if (fence.on_hold) {
    td.textContent = `${t("on_hold_until")} ${when(fence.on_hold.until_ms)} `;
    const b = document.createElement("button");
    b.textContent = t("void_hold");
    b.addEventListener("click", async () => {
      const r = await api(`/api/v1/stores/${s.store_id}/hold`, false, "DELETE", undefined, { "X-Staff-Id": staffId() });
      if (!r.ok) alert(said(r.data));
      overview();
    });
    td.appendChild(b);
    return;
  }
  if (s.connected || !s.earliest_fence_ms) return;
  const b = document.createElement("button");
  b.textContent = t("hold");
  b.addEventListener("click", async () => {
    const earliest = s.earliest_fence_ms;
    const minHours = Math.max(1, Math.ceil((earliest - Date.now()) / 3600000));
    const text = t("hold_risk").replace("{store}", s.store_id).replace("{at}", when(earliest));
    const hours = prompt(`${text}\n\n${t("hold_hours")}`, String(minHours));
    if (hours === null) return;
    const reason = prompt(t("hold_reason"), "");
    if (reason === null) return;
    const r = await api(`/api/v1/stores/${s.store_id}/hold`, false, "POST",
      { seconds: Math.round(Number(hours) * 3600), reason }, { "X-Staff-Id": staffId() });
    if (!r.ok) alert(said(r.data));
    overview();
  });
  td.appendChild(b);
}

function reportQuery(format) {
  let q = `from=${$("report-from").value}&to=${$("report-to").value}&by=${$("report-by").value}`;
  if ($("report-store").value.trim()) q += "&store=" + encodeURIComponent($("report-store").value.trim());
  if (format) q += "&format=" + format;
  return "/api/v1/reports/sales?" + q;
}

$("report").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api(reportQuery());
  $("report-error").textContent = r.ok ? "" : said(r.data);
  const head = $("report-table").querySelector("thead");
  const body = $("report-table").querySelector("tbody");
  head.innerHTML = "";
  body.innerHTML = "";
  const rows = (r.ok && r.data.rows) || [];
  if (!rows.length) return;
  const keys = Object.keys(rows[0]).filter((k) => k !== "by");
  const by = r.data.by;
  keys.sort((a, b) => (a === by ? -1 : b === by ? 1 : 0));
  const tr = document.createElement("tr");
  keys.forEach((k) => {
    const th = document.createElement("th");
    th.textContent = lang === "zh" ? COLUMNS[k] || k : k;
    tr.appendChild(th);
  });
  head.appendChild(tr);
  for (const row of rows) {
    const tr = document.createElement("tr");
    keys.forEach((k) => cell(tr, row[k] && row[k].amount !== undefined ? row[k].amount : row[k]));
    body.appendChild(tr);
  }
});

// The other reports: where each one's rows are, and its query.
const MORE = {
  members: { rows: "members", path: (p) => `/api/v1/reports/members?${p}` },
  liabilities: { rows: "by_store", path: () => "/api/v1/liabilities" },
  settlement: { rows: "owed", path: (p) => `/api/v1/settlement?${p}` },
  commissions: { rows: "staff", path: () => `/api/v1/commissions?month=${$("report-from").value.slice(0, 7)}` },
  audit: { rows: "actions", path: (p) => `/api/v1/audit?${p}` },
};
const MORE_COLUMNS = {
  member_id: "会员编号", phone_masked: "手机号", name: "姓名", days: "消费天数", store_id: "门店",
  kind: "类型", issued: "发放", redeemed: "已用", held: "本店持有", payer: "应付门店",
  payee: "应收门店", principal: "本金", bonus: "赠送", due: "应结算", staff_id: "员工",
  commission: "提成", entries: "笔数", at: "时间", action: "操作", detail: "内容", key: "请求编号",
  business_date: "营业日",
};

function moreQuery(format) {
  const m = MORE[$("more-kind").value];
  const path = m.path(`from=${$("report-from").value}&to=${$("report-to").value}`);
  return format ? path + (path.includes("?") ? "&" : "?") + "format=" + format : path;
}

function table(id, rows, names) {
  const head = $(id).querySelector("thead");
  const body = $(id).querySelector("tbody");
  head.innerHTML = "";
  body.innerHTML = "";
  if (!rows.length) return;
  const keys = Object.keys(rows[0]);
  const tr = document.createElement("tr");
  keys.forEach((k) => {
    const th = document.createElement("th");
    th.textContent = lang === "zh" ? names[k] || COLUMNS[k] || k : k;
    tr.appendChild(th);
  });
  head.appendChild(tr);
  for (const row of rows) {
    const tr = document.createElement("tr");
    keys.forEach((k) => {
      const v = row[k];
      cell(tr, v && typeof v === "object" && v.amount !== undefined ? v.amount : v === null ? "" : v);
    });
    body.appendChild(tr);
  }
}

$("more").addEventListener("submit", async (e) => {
  e.preventDefault();
  const kind = $("more-kind").value;
  const r = await api(moreQuery());
  $("more-error").textContent = r.ok ? "" : said(r.data);
  const d = r.data;
  $("more-summary").textContent = !r.ok ? "" : kind === "members"
    ? `新会员 ${d.joined} · 活跃 ${d.active} · 回头客 ${d.returning} · 沉睡 ${d.dormant} · 人均消费 ${yuan(d.spend_per_active_member)}`
    : kind === "liabilities"
      ? `储值 ${yuan(d.stored_value && d.stored_value.total)}（本金 ${yuan(d.stored_value && d.stored_value.principal)}）· 积分 ${d.points}` +
        ` · 应收：离线透支 ${yuan(d.receivables_total)} · 冻结门店重复消费 ${yuan(d.fence_receivables_total)}`
      : "";
  table("more-table", (r.ok && d[MORE[kind].rows]) || [], MORE_COLUMNS);
});

async function download(format, query) {
  const r = await api(query || reportQuery(format), true);
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = `report.${format}`;
  a.click();
}
$("export-csv").addEventListener("click", () => download("csv"));
$("export-xlsx").addEventListener("click", () => download("xlsx"));
$("more-csv").addEventListener("click", () => download("csv", moreQuery("csv")));
$("more-xlsx").addEventListener("click", () => download("xlsx", moreQuery("xlsx")));

// 会员查询: by name, phone tail or card number, phones masked.
$("msearch").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("/api/v1/members/search?q=" + encodeURIComponent($("msearch-q").value.trim()));
  $("msearch-error").textContent = r.ok ? (r.data.members.length ? "" : t("none_found")) : said(r.data);
  const members = (r.ok && r.data.members) || [];
  // Name and phone first, the actions right after them; the member's id is the name's tooltip.
  const rows = members.map((m) => ({
    name: m.name, phone_masked: m.phone_masked, tier: m.tier, card_no: m.card_no, home_store: m.home_store,
    card_status: m.card_no ? t("card_" + m.card_status) : "",
  }));
  table("msearch-table", rows, { name: "姓名", phone_masked: "手机", home_store: "开卡门店", tier: "等级", card_no: "卡号", card_status: "卡状态" });
  [...$("msearch-table").querySelector("tbody").rows].forEach((tr, i) => { tr.cells[0].title = members[i].member_id; });
  // 个人信息查阅复制: the member's own data as a file, on their request.
  const head = $("msearch-table").querySelector("thead tr");
  if (head) head.appendChild(document.createElement("th"));
  [...$("msearch-table").querySelector("tbody").rows].forEach((tr, i) => {
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = t("export_member");
    button.title = t("export_title");
    button.addEventListener("click", () => exportMember(members[i].member_id));
    td.appendChild(button);
    // 删除个人信息: on the member's request, once nothing is owed either way.
    const erase = document.createElement("button");
    erase.type = "button";
    erase.className = "danger";
    erase.textContent = t("erase_member");
    erase.title = t("erase_title");
    erase.addEventListener("click", () => eraseMember(members[i].member_id, tr));
    td.appendChild(erase);
    // 挂失: the member called the service line.
    if (members[i].card_no && members[i].card_status === "active") {
      const lost = document.createElement("button");
      lost.type = "button";
      lost.textContent = t("report_lost");
      lost.title = t("lost_title");
      lost.addEventListener("click", () => reportLost(members[i].member_id, lost));
      td.appendChild(lost);
    }
    tr.appendChild(td);
  });
});

async function reportLost(id, button) {
  if (!confirm(t("lost_confirm"))) return;
  const r = await api("/api/v1/members/" + id + "/card/lost", false, "POST");
  $("msearch-error").textContent = r.ok ? t("reported_lost") : said(r.data);
  if (r.ok) button.remove();
}

async function eraseMember(id, tr) {
  if (!confirm(t("erase_confirm"))) return;
  const r = await api("/api/v1/members/" + id + "/erase", false, "POST");
  $("msearch-error").textContent = r.ok ? t("erased") : said(r.data);
  if (r.ok) tr.remove();
}

async function exportMember(id) {
  const r = await api("/api/v1/members/" + id + "/export", true);
  if (!r.ok) {
    $("msearch-error").textContent = said(await r.json().catch(() => ({})));
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await r.blob());
  link.download = `member-${id}.json`;
  link.click();
  URL.revokeObjectURL(link.href);
}

// What arrived differently from what was shipped, line by line, then the receiver's note.
function discrepancy(tr) {
  if (tr.state !== "received") return "";
  const got = new Map((tr.received || []).map(([sku, qty]) => [sku, qty]));
  const sent = new Map((tr.shipped || []).map(([sku, qty]) => [sku, qty]));
  const lines = [...new Set([...sent.keys(), ...got.keys()])]
    .filter((sku) => Number(sent.get(sku) || 0) !== Number(got.get(sku) || 0))
    .map((sku) => `${sku} ${t("sent")} ${sent.get(sku) || 0} ${t("got")} ${got.get(sku) || 0}`);
  if (tr.discrepancy) lines.push(`“${tr.discrepancy}”`);
  return lines.join("；");
}

// 调拨单: the queue, approved or rejected here; discrepancies shown as received.
async function transfers() {
  const state = $("tqueue-state").value;
  const r = await api("/api/v1/transfers" + (state ? "?state=" + state : ""));
  $("tqueue-error").textContent = r.ok ? "" : said(r.data);
  const body = $("tqueue-table").querySelector("tbody");
  body.innerHTML = "";
  for (const tr of (r.ok && r.data.transfers) || []) {
    const row = document.createElement("tr");
    cell(row, tr.id);
    cell(row, `${tr.from} → ${tr.to}`);
    cell(row, tr.lines.map(([sku, qty]) => `${sku}×${qty}`).join("，"));
    cell(row, t("st_" + tr.state));
    cell(row, discrepancy(tr));
    const actions = cell(row, "");
    if (tr.state === "requested") {
      for (const step of ["approve", "reject"]) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = t(step);
        b.dataset.step = step;
        b.addEventListener("click", async () => {
          const done = await api(`/api/v1/transfers/${tr.id}/${step}`, false, "POST", step === "reject" ? { reason: "总部驳回" } : {});
          $("tqueue-error").textContent = done.ok ? "" : said(done.data);
          transfers();
        });
        actions.appendChild(b);
      }
    }
    body.appendChild(row);
  }
}
$("tqueue").addEventListener("submit", (e) => { e.preventDefault(); transfers(); });

// 会员规则: shown as they are in force, edited as lines of text, published as one change that
// every store applies once it hears of it. A line or field that does not pass is marked where
// it is, and nothing is published.
const splitLines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const parts = (line, sep) => line.split(sep).map((s) => s.trim());
function ruleForm() {
  const f = (id) => $(id).value.trim();
  const bad = (field, line) => { throw { field, message: t("line_bad"), detail: line }; };
  const map = (id, field) => {
    const out = {};
    for (const line of splitLines($(id).value)) {
      const p = parts(line, /[=＝]/);
      if (p.length !== 2 || !p[0] || !p[1] || p[0] in out) bad(field, line);
      out[p[0]] = p[1];
    }
    return out;
  };
  return {
    points_per_yuan: f("rules-points"),
    points_per_yuan_by_category: map("rules-categories", "points_per_yuan_by_category"),
    points_multipliers: splitLines($("rules-multipliers").value).map((line) => {
      const p = parts(line, /[,，]/);
      if (p.length !== 3) bad("points_multipliers", line);
      const day = /^\d+$/.test(p[1]) ? { weekday: null, day_of_month: Number(p[1]) } : { weekday: p[1], day_of_month: null };
      return { name: p[0], ...day, factor: p[2] };
    }),
    top_up_rules: splitLines($("rules-topups").value).map((line) => {
      const p = parts(line, /[,，]/);
      if (p.length !== 3) bad("top_up_rules", line);
      return { id: p[0], pay_at_least: p[1], bonus: p[2] };
    }),
    tier_percent_off: map("rules-tiers", "tier_percent_off"),
    offline_overdraft_per_member: f("rules-od-member"),
    offline_overdraft_per_store: f("rules-od-store"),
    offline_overdraft_needs_manager: $("rules-od-manager").checked,
  };
}

function showRules(r) {
  $("rules-points").value = r.points_per_yuan;
  $("rules-categories").value = Object.entries(r.points_per_yuan_by_category).map(([k, v]) => `${k}=${v}`).join("\n");
  $("rules-multipliers").value = r.points_multipliers.map((m) => `${m.name},${m.weekday || m.day_of_month},${m.factor}`).join("\n");
  $("rules-topups").value = r.top_up_rules.map((x) => `${x.id},${x.pay_at_least},${x.bonus}`).join("\n");
  $("rules-tiers").value = Object.entries(r.tier_percent_off).map(([k, v]) => `${k}=${v}`).join("\n");
  $("rules-od-member").value = r.offline_overdraft_per_member;
  $("rules-od-store").value = r.offline_overdraft_per_store;
  $("rules-od-manager").checked = !!r.offline_overdraft_needs_manager;
}

const ruleSummary = (r) => `每元 ${r.points_per_yuan} 分 · ${Object.keys(r.points_per_yuan_by_category).length} 个类别 · ` +
  `${r.points_multipliers.length} 个倍数日 · 充值：${r.top_up_rules.map((x) => x.id).join("、") || "无"} · ` +
  `等级：${Object.entries(r.tier_percent_off).map(([k, v]) => `${k} ${v}%`).join("、") || "无"} · ` +
  `透支 ¥${r.offline_overdraft_per_member} / ¥${r.offline_overdraft_per_store}` +
  (r.offline_overdraft_needs_manager ? "（须店长确认）" : "");

async function rules() {
  const r = await api("/api/v1/member-rules");
  if (!r.ok) return;
  const current = r.data.current;
  $("rules-source").textContent = current
    ? `${t("in_force")}：${new Date(current.published_at_ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" })} · ${current.staff_name || current.staff}`
    : t("not_published");
  if (current) showRules(current.rules);
  const body = $("rules-history").querySelector("tbody");
  body.innerHTML = "";
  for (const p of r.data.history) {
    const row = document.createElement("tr");
    cell(row, new Date(p.published_at_ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" }));
    cell(row, p.staff_name ? `${p.staff_name}（${p.staff}）` : p.staff);
    cell(row, ruleSummary(p.rules));
    body.appendChild(row);
  }
}

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
  $(line).textContent = input ? "" : said(data);
}

$("rules").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("rules");
  let body;
  try { body = ruleForm(); } catch (bad) { markField(form, "rules-error", bad); return; }
  const r = await api("/api/v1/member-rules", false, "PUT", body, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(form, "rules-error", r.data); return; }
  markField(form, "rules-error", {});
  $("rules-error").textContent = t("published");
  await rules();
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
  overview();
  loadBackups();
});

async function show() {
  $("login").hidden = true;
  $("hq").hidden = false;
  await Promise.all([overview(), transfers(), rules(), window.marketing ? window.marketing() : null, window.tiers ? window.tiers() : null, window.catalogue ? window.catalogue() : null, loadBackups()]);
}

(async function start() {
  applyLang();
  $("report-from").value = monthStart();
  $("report-to").value = today();
  const health = await api("/api/v1/health");
  if (health.ok) $("open-mode").hidden = !health.data.open_without_login;
  const probe = await api("/api/v1/stores");
  if (probe.ok) show();
  setInterval(() => { if (!$("hq").hidden) overview(); }, 10000);
})();
