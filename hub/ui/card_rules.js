// 退卡与计时规则: how every store closes a membership (the share of the bonus paid back, cards
// pro rata or not, the handling fee) and charges a timed card (free minutes, step, rounding),
// with its history. Uses app.js's helpers ($, api, table, markField, staffId, lang).
"use strict";

const CARD_RULES_EN = {
  "退卡与计时规则": "Closing and timed-card rules", "退卡": "Closing a membership", "计时卡": "Timed cards",
  "退卡时储值本金全额退还，积分和优惠券作废；以下规则在所有门店生效，断网门店联网后生效。": "A closing pays the stored value's principal back in full; points and coupons lapse. These rules hold at every store (a store offline takes them when back).",
  "退还剩余赠送金 (%)": "Bonus left paid back (%)", "次卡、计时卡、期限卡": "Count, timed and period cards",
  "按剩余比例退": "Paid back for what is left", "不退": "Not paid back", "退卡手续费 (%)": "Handling fee (%)",
  "免费时长 (分钟)": "Free minutes", "计费单位 (分钟)": "Charged in steps of (minutes)", "不足一个单位": "A step begun",
  "按一个单位计": "counts as a step", "四舍五入": "to the nearest step", "不计": "is not charged",
  "发布到所有门店": "Publish", "已发布": "Published", "生效中": "In force",
  "尚未发布：退卡按剩余比例、不收手续费，计时按门店 node.toml 的计费单位": "Not published: closings pay cards pro rata with no fee; timed cards by each store's node.toml step",
};
const CRL = (zh) => (lang === "zh" ? zh : CARD_RULES_EN[zh] || zh);
function cardRulesLang() {
  document.querySelectorAll("#card-rules [data-zh]").forEach((el) => { el.textContent = CRL(el.dataset.zh); });
}
cardRulesLang();
$("lang").addEventListener("click", () => setTimeout(cardRulesLang));

const ROUNDING_ZH = { up: "不足一个单位按一个单位计", nearest: "四舍五入", down: "不足一个单位不计" };
const cardRulesSummary = (r) =>
  `退赠送 ${r.bonus_refund_percent}%，次卡${r.cards === "none" ? "不退" : "按剩余比例退"}，手续费 ${r.fee_percent}%；` +
  `计时免费 ${r.free_minutes} 分钟，每 ${r.step_minutes} 分钟计费，${ROUNDING_ZH[r.rounding]}`;

async function cardRulesScreen() {
  const r = await api("/api/v1/card-rules");
  if (!r.ok) return;
  const current = r.data.current;
  const at = (ms) => new Date(ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" });
  $("card-rules-source").textContent = current
    ? `${CRL("生效中")}：${at(current.published_at_ms)} · ${current.staff_name || current.staff}`
    : CRL("尚未发布：退卡按剩余比例、不收手续费，计时按门店 node.toml 的计费单位");
  if (current) {
    const c = current.rules;
    $("cr-bonus").value = c.bonus_refund_percent;
    $("cr-cards").value = c.cards;
    $("cr-fee").value = c.fee_percent;
    $("cr-free").value = c.free_minutes;
    $("cr-step").value = c.step_minutes;
    $("cr-rounding").value = c.rounding;
  }
  table("card-rules-history", r.data.history.map((p) => ({ at: at(p.published_at_ms), staff: p.staff_name || p.staff, summary: cardRulesSummary(p.rules) })),
    { at: "时间", staff: "操作人", summary: "内容" });
}

$("card-rules-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("card-rules-form");
  const whole = (id) => Number($(id).value === "" ? NaN : $(id).value);
  const body = {
    bonus_refund_percent: $("cr-bonus").value.trim() || "0",
    cards: $("cr-cards").value,
    fee_percent: $("cr-fee").value.trim() || "0",
    step_minutes: whole("cr-step"),
    rounding: $("cr-rounding").value,
    free_minutes: whole("cr-free"),
  };
  const r = await api("/api/v1/card-rules", false, "PUT", body, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(form, "card-rules-error", r.data); return; }
  markField(form, "card-rules-error", {});
  $("card-rules-error").textContent = CRL("已发布");
  await cardRulesScreen();
});

window.cardRulesScreen = cardRulesScreen;
