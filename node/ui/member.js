// 会员: the member bar (find by phone, card or name; register one not found), shown on every
// screen, and 会员详情 (profile, cards, coupons, manager actions, recent sales).
"use strict";

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
  if (!$("screen-member").hidden) {
    $("member-page").hidden = false;
    $("member-none").hidden = true;
    await memberPage();
    await loadGifts();
  }
}

function clearMember() {
  member = null;
  $("member").hidden = true;
  $("register").hidden = true;
  $("member-results").hidden = true;
  $("member-page").hidden = true;
  $("member-none").hidden = false;
  $("lookup-phone").value = "";
  $("sale-stored").checked = false;
  fillCoupons([]);
}

// 查找会员: a whole phone number is looked up (and offered for registration when unknown);
// anything else is searched by name, phone tail or card number, phones masked.
$("lookup").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("member-error").textContent = "";
  const text = $("lookup-phone").value.trim();
  // 动态会员码 (18 digits from 7, scanned off the member's page): found here, offline too; a
  // code no one has may still be a card number, searched below.
  if (/^7\d{17}$/.test(text.replace(/\s/g, ""))) {
    const r = await api("GET", "/api/v1/members/lookup?code=" + encodeURIComponent(text.replace(/\s/g, "")));
    if (r.ok) { $("lookup-phone").value = ""; await showMember(r.data); $("scan-code").focus(); return; }
    if (r.status !== 404) { $("member-error").textContent = said(r.data); return; }
  }
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
  const referral = $("register-referral").value.trim().toUpperCase();
  if (referral) body.referral_code = referral;
  const r = await api("POST", "/api/v1/members", body, newKey());
  if (!r.ok) { showError(form, "member-error", r.data); return; }
  clearErrors(form);
  $("register-name").value = "";
  $("register-referral").value = "";
  $("member-error").textContent = "";
  await showMember(r.data);
  $("sale-amount").focus();
});

$("member-clear").addEventListener("click", clearMember);
$("member-open").addEventListener("click", () => showScreen("member", "edit-name"));
$("member-close").addEventListener("click", () => showScreen("sale"));

// 会员详情 shown (F3, or the bar's button): the member found, or a word to find one first.
function openMemberPage() {
  $("member-page").hidden = !member;
  $("member-none").hidden = !!member;
  if (member) showMember(member);
}

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
    // 拓客: the member's own code, and who referred them (set once, 补填推荐人).
    $("page-referral").textContent = m.data.referral_code;
    $("page-referrer").textContent = m.data.referrer ? `· ${t("referred_by")} ${m.data.referrer}` : "";
    $("edit-referral").value = "";
    $("edit-referral-row").hidden = !!m.data.referrer;
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
    b.addEventListener("click", async () => { $("return-sale").value = s.sale_id; showScreen("returns", "return-reason"); await listReturnLines(); $("return-reason").focus(); });
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
  const referral = $("edit-referral").value.trim().toUpperCase();
  if (referral) body.referral_code = referral;
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
    b.addEventListener("click", () => { addCoupon(c.coupon_id); requote(); showScreen("sale"); });
    cell(tr, "").appendChild(b);
    body.appendChild(tr);
  }
}

function fillCoupons(coupons) {
  const usable = coupons.filter((c) => c.state === "usable").map((c) => c.coupon_id);
  moreCoupons = moreCoupons.filter((id) => usable.includes(id));
  showMoreCoupons();
  const select = $("pay-coupon");
  select.querySelectorAll("option:not([value=''])").forEach((o) => o.remove());
  for (const c of coupons.filter((c) => c.state === "usable")) {
    const o = document.createElement("option");
    o.value = c.coupon_id;
    o.textContent = c.name;
    select.appendChild(o);
  }
}

