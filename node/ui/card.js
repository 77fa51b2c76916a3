// 会员卡 on the member page (after app.js, whose T, t, api, $, said, keyFor, keyDone, member,
// showMember and applyLang it uses): 挂失 by anyone at the till; 解挂, 补卡 and 退卡 by a store
// manager once the member has shown who they are (their payment password, or an identity
// document the manager saw). 退卡 shows what it would pay back before it is confirmed.
"use strict";

Object.assign(T.zh, {
  card_life: "会员卡", card_status_active: "正常", card_status_lost: "已挂失", card_status_closed: "已退卡",
  no_card: "未发卡", former_cards: "旧卡", report_lost: "挂失", found_again: "解挂", reissue: "补卡",
  new_card_no: "新卡号（补卡）", identity_check: "身份核验", check_id: "店长已查验身份证件",
  check_password: "会员输入支付密码", close_preview: "退卡试算", close_membership: "确认退卡",
  close_cash: "应退现金", close_principal: "储值本金", close_cards: "次卡/期限卡退款",
  close_bonus: "按总部规则退赠送金", close_fee: "扣退卡手续费",
  close_forfeit: "作废：赠送金 {b} 元，积分 {p}，优惠券 {c} 张", close_partial: "本店尚未取到该会员的全部记录，试算可能不全",
  card_reported_lost: "已挂失：该卡在各门店都不能再查找会员（未联网的门店联网后生效）", card_found: "已解挂",
  card_reissued: "已补卡，余额、积分和卡项都已转到新卡", membership_closed: "已退卡，请付给会员现金 {cash} 元",
  timed_card: "计时卡", card_uses: "次数 / 分钟", minutes_left: "剩余", minutes: "分钟", clock_in: "开始计时",
  clock_out: "结束计时", clock_since: "计时中，开始于", clocked_out: "计费 {m} 分钟，扣卡 {c} 分钟", overtime: "，超出 {o} 分钟请另行收费",
  confirm_lost: "确认挂失这张会员卡？", confirm_close: "确认退卡？退还 {cash} 元现金，其余赠送金、积分和优惠券作废，不可撤销。",
});
Object.assign(T.en, {
  card_life: "Membership card", card_status_active: "in use", card_status_lost: "reported lost", card_status_closed: "closed",
  no_card: "no card", former_cards: "old cards", report_lost: "Report lost", found_again: "Found again", reissue: "Reissue",
  new_card_no: "New card number (reissue)", identity_check: "Identity check", check_id: "Manager saw an ID document",
  check_password: "Member enters payment password", close_preview: "Preview closing", close_membership: "Close membership",
  close_cash: "Cash to pay back", close_principal: "Stored value", close_cards: "Cards paid back",
  close_bonus: "Bonus paid back by the chain's rules", close_fee: "Handling fee kept",
  close_forfeit: "Forfeited: bonus {b}, points {p}, coupons {c}", close_partial: "This store does not have the member's whole record yet: the preview may be short",
  card_reported_lost: "Reported lost: the card finds no one at any store (a store offline learns it when back)", card_found: "Card found again",
  card_reissued: "Reissued: balance, points and cards are on the new card", membership_closed: "Closed: pay the member {cash} in cash",
  timed_card: "Timed card", card_uses: "Uses / minutes", minutes_left: "Left", minutes: "min", clock_in: "Start clock",
  clock_out: "Stop clock", clock_since: "Running since", clocked_out: "{m} min to charge, {c} min off the card", overtime: "; {o} min over: charge them as a sale",
  confirm_lost: "Report this card lost?", confirm_close: "Close the membership? {cash} paid back in cash; the rest of the bonus, points and coupons lapse. This cannot be undone.",
});
applyLang();

let closingCash = null;
// A closing's key is the member's: one left pending for another member is never sent here.
const closeKey = () => "close-" + member.member_id;
// The cash sent under each member's pending key: another figure is another request (a closing
// that did go through answers the new key membership_closed, paying nothing twice).
const closeSent = {};

// The card's status on the member bar and on the member page.
function showCard(m) {
  const status = m.card_no ? t("card_status_" + m.card_status) : t("no_card");
  $("member-card").textContent = m.card_no ? `${m.card_no} · ${status}` : "";
  $("member-card").className = m.card_status === "active" ? "tag" : "tag warn";
  $("life-card").textContent = m.card_no || t("no_card");
  $("life-status").textContent = status;
  $("life-status").className = m.card_status === "active" ? "tag" : "tag warn";
  $("life-former").textContent = m.former_cards.length ? `${t("former_cards")}: ${m.former_cards.join(", ")}` : "";
  $("life-lost").disabled = !m.card_no || m.card_status !== "active";
  $("life-found").disabled = m.card_status !== "lost";
  $("life-closing").textContent = "";
  closingCash = null;
}

function lifeSaid(r, done) {
  $("life-error").textContent = r.ok ? "" : said(r.data);
  $("life-done").textContent = r.ok ? t(done) : "";
}

function identity() {
  const body = { check: $("life-check").value };
  if (body.check === "payment_password") body.password = $("life-password").value;
  return body;
}

$("life-check").addEventListener("change", () => {
  $("life-password-row").hidden = $("life-check").value !== "payment_password";
});

$("life-lost").addEventListener("click", async () => {
  if (!member || !confirm(t("confirm_lost"))) return;
  const name = "lost-" + member.member_id;
  const r = await api("POST", `/api/v1/members/${member.member_id}/card/lost`, {}, keyFor(name));
  if (r.ok) { keyDone(name); await showMember(r.data); }
  lifeSaid(r, "card_reported_lost");
});

$("life-found").addEventListener("click", async () => {
  if (!member) return;
  const r = await api("POST", `/api/v1/members/${member.member_id}/card/found`, identity(), keyFor("life-identity"));
  $("life-password").value = "";
  if (r.ok) { keyDone("life-identity"); await showMember(r.data); }
  lifeSaid(r, "card_found");
});

$("life-identity").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!member) return;
  const body = Object.assign(identity(), { card_no: $("life-new-card").value.trim() });
  const r = await api("POST", `/api/v1/members/${member.member_id}/card/reissue`, body, keyFor("life-identity"));
  $("life-password").value = "";
  if (r.ok) { keyDone("life-identity"); $("life-new-card").value = ""; await showMember(r.data); }
  lifeSaid(r, "card_reissued");
});

// 退卡试算: what closing would pay back now (and what lapses); its cash is what is confirmed.
async function previewClosing() {
  if (!member) return;
  const r = await api("GET", `/api/v1/members/${member.member_id}/closing`);
  const out = $("life-closing");
  out.textContent = "";
  lifeSaid(r, "");
  if (!r.ok) return;
  const c = r.data;
  closingCash = c.cash;
  const line = (text) => { const p = document.createElement("div"); p.textContent = text; out.appendChild(p); };
  line(`${t("close_cash")}: ${c.cash} · ${t("close_principal")} ${c.principal}`);
  for (const card of c.cards) line(`${t("close_cards")}: ${card.name} ${card.refund} (${card.left})`);
  if (c.bonus_refunded !== "0.00") line(`${t("close_bonus")}: ${c.bonus_refunded}`);
  if (c.fee !== "0.00") line(`${t("close_fee")}: −${c.fee}`);
  line(t("close_forfeit").replace("{b}", c.bonus_forfeited).replace("{p}", c.points_forfeited).replace("{c}", c.coupons_forfeited));
  if (!c.whole) line(t("close_partial"));
}

$("life-preview").addEventListener("click", previewClosing);

$("life-close").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!member) return;
  if (closingCash === null) { $("life-preview").click(); return; }
  if (!confirm(t("confirm_close").replace("{cash}", closingCash))) return;
  // The cash the member was told: refused (closing_changed) if the closing would pay another.
  const body = { reason: $("life-reason").value.trim(), cash: { amount: closingCash } };
  if ($("life-close-password").value) body.password = $("life-close-password").value;
  if (closeSent[member.member_id] !== undefined && closeSent[member.member_id] !== closingCash) keyDone(closeKey());
  closeSent[member.member_id] = closingCash;
  const r = await api("POST", `/api/v1/members/${member.member_id}/close`, body, keyFor(closeKey()));
  $("life-close-password").value = "";
  lifeSaid(r, "membership_closed");
  if (r.ok) $("life-done").textContent = t("membership_closed").replace("{cash}", r.data.closing ? r.data.closing.cash : closingCash);
  if (!r.ok && r.data && r.data.code === "closing_changed") {
    // The rules or the balance moved since the preview: show the new figure to confirm again.
    keyDone(closeKey());
    const why = $("life-error").textContent;
    await previewClosing();
    $("life-error").textContent = why;
  }
  if (r.ok) {
    keyDone(closeKey());
    const m = await api("GET", `/api/v1/members/${member.member_id}`);
    if (m.ok) await showMember(m.data);
  }
});

// 计时卡 in the member page's card table: minutes left, and the clock started or stopped.
function timedRow(tr, c) {
  const since = c.clocked_in_ms ? ` · ${t("clock_since")} ${new Date(c.clocked_in_ms).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" })}` : "";
  cell(tr, `${t("minutes_left")} ${c.uses_left} ${t("minutes")}${since}`);
  const b = document.createElement("button");
  b.type = "button";
  const running = !!c.clocked_in_ms;
  b.textContent = running ? t("clock_out") : t("clock_in");
  b.disabled = !c.usable_today;
  b.addEventListener("click", async () => {
    const name = (running ? "out-" : "in-") + c.card_id;
    const path = `/api/v1/members/${member.member_id}/cards/${c.card_id}/${running ? "clock-out" : "clock-in"}`;
    const r = await api("POST", path, {}, keyFor(name));
    if (r.ok) keyDone(name);
    let said_ = r.ok ? "" : said(r.data);
    if (r.ok && r.data.clock_out) {
      const o = r.data.clock_out;
      said_ = t("clocked_out").replace("{m}", o.minutes).replace("{c}", o.charged) + (o.overtime ? t("overtime").replace("{o}", o.overtime) : "");
    }
    $("card-error").textContent = said_;
    $("card-error").className = r.ok ? "ok" : "error";
    await showMember(member);
  });
  cell(tr, "").appendChild(b);
}
