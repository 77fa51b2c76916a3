// 会员自助: the member's own page (phone-sized), served by headquarters at /m. Sign in by phone
// with a one-time code; then the member code (动态会员码: QR code, barcode and digits, renewed
// each minute), stored value, points by lot, cards, coupons and purchases at every store.
"use strict";

const T = {
  zh: {
    title: "我的会员卡", sign_out: "退出", sign_in: "会员登录", phone: "手机号", send_code: "获取验证码", code: "验证码",
    enter: "登录", privacy: "验证码只发到会员本人手机；我们不会向您索要验证码。", member_code: "会员码",
    code_hint: "出示给收银员扫码，每分钟自动更新", stored: "储值", points: "积分", cards: "卡项", coupons: "优惠券",
    purchases: "消费记录", sent: "验证码已发送（5 分钟内有效）", resend: "{s} 秒后重发", principal: "本金", bonus: "赠送",
    expires: "到期", left: "剩余", times: "次", minutes: "分钟", until: "至", refund: "退货", usable: "可用", used: "已用",
    not_valid_today: "未到期或已过期", seconds_left: "{s} 秒后更新", no_expiry: "长期有效",
    password: "支付密码", old_password: "原支付密码", or_code: "忘记了？用验证码：", new_password: "新支付密码（6 位数字）",
    again: "再输一次", save_password: "保存", password_none: "还没有设置支付密码：设置后可在门店用储值付款", password_is_set: "已设置；修改需原密码或短信验证码",
    password_saved: "支付密码已保存，各门店联网后生效", password_mismatch: "两次输入不一致", password_format: "支付密码是 6 位数字",
    invited: "好友邀请您成为会员", invited_how: "到任一门店登记时报上推荐码：", referral_link: "推荐链接（发给好友）：",
    referral: "推荐好友", referral_hint: "好友在任一门店注册时报上推荐码，首次消费后您即获奖励。", referred: "已推荐 {n} 人",
    mall: "积分商城", redeem: "兑换", at_store: "到店兑换：出示会员码", had: "已兑", points_unit: "积分", redeemed: "兑换成功，券已到账",
    confirm_redeem: "用 {p} 积分兑换「{g}」？", gathering: "正在调取您在门店的积分…", no_gifts: "暂无可兑换的礼品",
  },
  en: {
    title: "My member card", sign_out: "Sign out", sign_in: "Sign in", phone: "Phone", send_code: "Send code", code: "Code",
    enter: "Sign in", privacy: "The code goes only to the member's phone; nobody will ask you for it.", member_code: "Member code",
    code_hint: "Show it at the till; it changes every minute", stored: "Stored value", points: "Points", cards: "Cards",
    coupons: "Coupons", purchases: "Purchases", sent: "Code sent (good for 5 minutes)", resend: "again in {s} s",
    principal: "principal", bonus: "bonus", expires: "expires", left: "left", times: "uses", minutes: "min", until: "until",
    refund: "return", usable: "usable", used: "used", not_valid_today: "not valid today", seconds_left: "new code in {s} s",
    no_expiry: "no expiry",
    password: "Payment password", old_password: "Current password", or_code: "Forgot it? Use a code:", new_password: "New password (6 digits)",
    again: "Again", save_password: "Save", password_none: "No payment password yet: set one to pay with stored value at the stores", password_is_set: "Set; changing it needs the current one or a code",
    password_saved: "Saved; each store applies it once it hears of it", password_mismatch: "The two differ", password_format: "A payment password is six digits",
    invited: "A friend invites you to join", invited_how: "When you join at any store, give this referral code:", referral_link: "Link to send a friend:",
    referral: "Refer a friend", referral_hint: "A friend gives your code when they join at any store; you are rewarded after their first purchase.", referred: "{n} referred",
    mall: "Points mall", redeem: "Redeem", at_store: "At a store: show your member code", had: "had", points_unit: "points", redeemed: "Redeemed: the coupon is yours",
    confirm_redeem: "Redeem “{g}” for {p} points?", gathering: "Fetching your points from the stores…", no_gifts: "No gifts on offer",
  },
};
let lang = localStorage.getItem("me-lang") || "zh";
let token = sessionStorage.getItem("me-token");
let codeUntil = 0;
const $ = (id) => document.getElementById(id);
const t = (k) => (T[lang] && T[lang][k]) || T.zh[k] || k;
const said = (d) => (lang === "zh" ? d.message || d.detail || "" : d.detail || d.message || "");

function applyLang() {
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("me-lang").textContent = lang === "zh" ? "EN" : "中文";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = "Bearer " + token;
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, data: { message: "无法连接", detail: String(e) } };
  }
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && path !== "/api/v1/me/sessions") signedOut();
  return { ok: r.ok, status: r.status, data };
}

function li(list, left, right, sub) {
  const item = document.createElement("li");
  const a = document.createElement("span");
  a.textContent = left;
  if (sub) { const s = document.createElement("small"); s.textContent = sub; a.appendChild(s); }
  const b = document.createElement("span");
  b.textContent = right;
  item.append(a, b);
  list.appendChild(item);
  return b;
}

function signedOut() {
  token = null;
  sessionStorage.removeItem("me-token");
  $("me-card").hidden = true;
  $("me-out").hidden = true;
  $("me-signin").hidden = false;
}

let resendTimer = null;
$("me-send").addEventListener("click", async () => {
  const r = await api("POST", "/api/v1/me/codes", { phone: $("me-phone").value.trim() });
  $("me-error").className = r.ok ? "ok" : "error";
  $("me-error").textContent = r.ok ? t("sent") : said(r.data);
  if (!r.ok) return;
  $("me-code").focus();
  let s = 60;
  $("me-send").disabled = true;
  clearInterval(resendTimer);
  resendTimer = setInterval(() => {
    s -= 1;
    $("me-send").textContent = s > 0 ? t("resend").replace("{s}", s) : t("send_code");
    if (s <= 0) { clearInterval(resendTimer); $("me-send").disabled = false; }
  }, 1000);
});

$("me-signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("POST", "/api/v1/me/sessions", { phone: $("me-phone").value.trim(), code: $("me-code").value.trim() });
  $("me-error").className = "error";
  if (!r.ok) { $("me-error").textContent = said(r.data); return; }
  token = r.data.token;
  sessionStorage.setItem("me-token", token);
  sessionStorage.setItem("me-phone", $("me-phone").value.trim());
  $("me-code").value = "";
  $("me-error").textContent = "";
  await show();
});

$("me-out").addEventListener("click", async () => {
  await api("DELETE", "/api/v1/me/sessions");
  signedOut();
});

$("me-lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("me-lang", lang);
  applyLang();
  if (token) show();
});

const yuan = (m) => "¥" + m.amount;

async function show() {
  const r = await api("GET", "/api/v1/me");
  if (!r.ok) { if (token) $("me-error").textContent = said(r.data); return; }
  const m = r.data;
  $("me-signin").hidden = true;
  $("me-invited").hidden = true;
  $("me-card").hidden = false;
  $("me-out").hidden = false;
  $("me-name").textContent = m.name;
  $("me-tier").textContent = m.tier || "";
  $("me-phone-masked").textContent = m.phone_masked;
  $("me-card-no").textContent = m.card_no || "";
  $("me-stored").textContent = yuan(m.stored_value.total);
  $("me-stored-split").textContent = `${t("principal")} ${yuan(m.stored_value.principal)} · ${t("bonus")} ${yuan(m.stored_value.bonus)}`;
  $("me-points").textContent = m.points.balance;
  $("me-lots").textContent = m.points.lots.map(([, to, n]) => `${n} ${to ? t("expires") + " " + to : t("no_expiry")}`).join(" · ");
  const cards = $("me-cards");
  cards.innerHTML = "";
  for (const c of m.cards) {
    const kind = c.card_info.kind;
    const left = kind.timed ? `${t("left")} ${c.uses_left ? c.uses_left[0] : 0} ${t("minutes")}`
      : kind.period ? `${t("until")} ${kind.period.to}`
      : `${t("left")} ${c.uses_left ? c.uses_left[0] : 0} ${t("times")}`;
    li(cards, c.card_info.name, left);
  }
  const coupons = $("me-coupons");
  coupons.innerHTML = "";
  for (const c of m.coupons) li(coupons, c.name, t(c.state), `${c.valid_from} ~ ${c.valid_to}`);
  const bought = $("me-purchases");
  bought.innerHTML = "";
  for (const p of m.purchases) {
    const amount = li(bought, p.store, (p.returned ? "−" : "") + yuan(p.amount), `${p.at}${p.returned ? " · " + t("refund") : ""}`);
    if (p.returned) amount.className = "minus";
  }
  $("me-referral").textContent = m.referral_code;
  // The page's own address (headquarters' or a store's) with the code: a friend who opens it
  // is shown the code to give at a till.
  $("me-referral-link").textContent = `${location.origin}/m?ref=${m.referral_code}`;
  $("me-referred").textContent = t("referred").replace("{n}", m.referred);
  $("me-password-state").textContent = t(m.password_set ? "password_is_set" : "password_none");
  $("me-old-row").hidden = !m.password_set;
  await Promise.all([showCode(), showGifts()]);
}

// 积分商城: coupon gifts are redeemed here, goods at a store (off its shelf).
async function showGifts() {
  const r = await api("GET", "/api/v1/me/gifts");
  const list = $("me-gifts");
  list.innerHTML = "";
  const gifts = (r.ok && r.data.gifts) || [];
  if (!gifts.length) li(list, t("no_gifts"), "");
  for (const g of gifts) {
    const sub = `${t("had")} ${g.had}/${g.per_member}` + (g.online ? "" : ` · ${t("at_store")}`);
    const right = li(list, g.name, `${g.points} ${t("points_unit")}`, sub);
    if (!g.online) continue;
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = t("redeem");
    b.disabled = g.had >= g.per_member || r.data.points < g.points;
    b.addEventListener("click", () => redeem(g));
    right.append(" ", b);
  }
}

// One key per press: a retry (the points on their way from a store, a lost answer) gives
// one gift.
async function redeem(g) {
  if (!confirm(t("confirm_redeem").replace("{g}", g.name).replace("{p}", g.points))) return;
  const line = $("me-gift-error");
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const key = "g-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  let r;
  for (let i = 0; i < 8; i += 1) {
    r = await api("POST", "/api/v1/me/gifts", { gift: g.id, key });
    if (r.ok || r.data.code !== "points_on_the_way") break;
    line.className = "hint";
    line.textContent = t("gathering");
    await new Promise((done) => setTimeout(done, 1500));
  }
  line.className = r.ok ? "ok" : "error";
  line.textContent = r.ok ? t("redeemed") : said(r.data);
  if (r.ok) await show();
}

// A code for the password: sent to the phone the member signed in with.
$("me-password-send").addEventListener("click", async () => {
  const phone = $("me-phone").value.trim() || sessionStorage.getItem("me-phone") || "";
  const sent = await api("POST", "/api/v1/me/codes", { phone });
  $("me-password-error").className = sent.ok ? "ok" : "error";
  $("me-password-error").textContent = sent.ok ? t("sent") : said(sent.data);
  if (sent.ok) { $("me-pcode-row").hidden = false; $("me-pcode").focus(); }
});

$("me-password").addEventListener("submit", async (e) => {
  e.preventDefault();
  const line = $("me-password-error");
  line.className = "error";
  const password = $("me-new").value;
  if (!/^\d{6}$/.test(password)) { line.textContent = t("password_format"); return; }
  if (password !== $("me-new2").value) { line.textContent = t("password_mismatch"); return; }
  const body = { password };
  if ($("me-pcode").value.trim()) body.code = $("me-pcode").value.trim();
  else if ($("me-old").value) body.old_password = $("me-old").value;
  const r = await api("PUT", "/api/v1/me/password", body);
  ["me-old", "me-new", "me-new2", "me-pcode"].forEach((id) => { $(id).value = ""; });
  if (!r.ok) { line.textContent = said(r.data); return; }
  line.className = "ok";
  line.textContent = t("password_saved");
  $("me-pcode-row").hidden = true;
  $("me-password-state").textContent = t("password_is_set");
  $("me-old-row").hidden = false;
});

async function showCode() {
  const r = await api("GET", "/api/v1/me/code");
  if (!r.ok) { $("me-digits").textContent = said(r.data); return; }
  $("me-qr").innerHTML = r.data.qr_svg;
  $("me-barcode").innerHTML = r.data.barcode_svg;
  $("me-digits").textContent = r.data.code.replace(/(\d{4})(?=\d)/g, "$1 ");
  // By this phone's own clock, which may not agree with headquarters'.
  codeUntil = Date.now() + r.data.seconds_left * 1000;
}

// The code renews itself when its minute is up, and says how long it has.
setInterval(() => {
  if (!token || $("me-card").hidden || !codeUntil) return;
  const left = Math.max(0, Math.ceil((codeUntil - Date.now()) / 1000));
  $("me-ttl").textContent = t("seconds_left").replace("{s}", left);
  if (left === 0) { codeUntil = 0; showCode(); }
}, 1000);

// Opened from a member's referral link: the code to give when joining at a store.
const invite = new URLSearchParams(location.search).get("ref");
if (invite && /^R[0-9A-Z]{10}$/.test(invite)) {
  $("me-invited").hidden = false;
  $("me-invite-code").textContent = invite;
}

applyLang();
if (token) show();
