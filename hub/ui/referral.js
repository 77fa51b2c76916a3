// 拓客: what a referrer is given on their new member's first paid sale (level 1, and level 2
// if the chain turns it on), and the referral report per referrer and level (CSV/Excel). Uses
// app.js's and reports.js's helpers ($, api, said, table, markField, download, lang).
"use strict";

const REFERRAL_EN = {
  "拓客奖励": "Referral rewards", "一级（推荐人）": "Level 1 (the referrer)", "二级（推荐人的推荐人）": "Level 2 (the referrer's referrer)",
  "积分": "Points", "赠送金 (元)": "Bonus (yuan)", "券模板": "Coupon template", "启用二级": "Reward level 2",
  "发布到所有门店": "Publish", "已发布": "Published", "尚未发布：不奖励": "Not published: no rewards", "生效中": "In force",
  "拓客报表": "Referral report",
  "新会员在任一门店首次付款后奖励（注册时不奖励）；首单全额退货则收回未用部分。": "Given after the new member's first paid sale at any store (not at sign-up); taken back, as far as unspent, if that sale is returned in full.",
};
const RL = (zh) => (lang === "zh" ? zh : REFERRAL_EN[zh] || zh);
function referralLang() {
  document.querySelectorAll("#referral [data-zh]").forEach((el) => { el.textContent = RL(el.dataset.zh); });
}
referralLang();
$("lang").addEventListener("click", () => setTimeout(referralLang));

const rewardOf = (prefix) => ({
  points: Number($(`${prefix}-points`).value || 0),
  bonus: $(`${prefix}-bonus`).value.trim() || null,
  coupon: $(`${prefix}-coupon`).value.trim() || null,
});
function fill(prefix, r) {
  $(`${prefix}-points`).value = r ? r.points : "";
  $(`${prefix}-bonus`).value = r && parseFloat(r.bonus) !== 0 ? r.bonus : "";
  $(`${prefix}-coupon`).value = (r && r.coupon) || "";
}

async function referralScreen() {
  const [r, report] = await Promise.all([api("/api/v1/referral-rules"), api("/api/v1/reports/referrals")]);
  if (r.ok) {
    const current = r.data.current;
    const at = (ms) => new Date(ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" });
    $("referral-source").textContent = current ? `${RL("生效中")}：${at(current.published_at_ms)} · ${current.staff_name || current.staff}` : RL("尚未发布：不奖励");
    if (current) {
      fill("ref1", current.rules.level1);
      $("ref2-on").checked = !!current.rules.level2;
      fill("ref2", current.rules.level2);
    }
  }
  if (report.ok) {
    table("referral-report", report.data.rows, { referrer: "推荐人", name: "姓名", phone_masked: "手机", level: "级别", referred: "推荐人数", paid: "已首单",
      rewarded: "已奖励", points: "奖励积分", bonus: "奖励赠送金", taken_back_points: "收回积分", kept_points: "已用未收回积分" });
  }
}

$("referral-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("referral-form");
  const body = { level1: rewardOf("ref1") };
  if ($("ref2-on").checked) body.level2 = rewardOf("ref2");
  const r = await api("/api/v1/referral-rules", false, "PUT", body, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(form, "referral-error", r.data); return; }
  markField(form, "referral-error", {});
  $("referral-error").textContent = RL("已发布");
  await referralScreen();
});
$("referral-csv").addEventListener("click", () => download("csv", "/api/v1/reports/referrals?format=csv"));
$("referral-xlsx").addEventListener("click", () => download("xlsx", "/api/v1/reports/referrals?format=xlsx"));

window.referralScreen = referralScreen;
