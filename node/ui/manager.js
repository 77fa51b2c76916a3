// 会员详情's manager actions beside the points adjustment: a coupon issued to this member (发券:
// 满减, 折扣 with a cap, 代金, 体验; spent once anywhere in the chain) and stored value refunded
// (退储值: principal paid back in cash, bonus never). The node refuses both to a cashier.
"use strict";

function couponKind() {
  const k = $("coupon-kind").value;
  const show = { "c-threshold": k !== "experience", "c-off": k === "amount_off" || k === "voucher", "c-percent": k === "percent_off", "c-cap": k === "percent_off", "c-sku": k === "experience" };
  for (const [cls, on] of Object.entries(show)) document.querySelectorAll("#issue-coupon ." + cls).forEach((el) => { el.hidden = !on; });
}
$("coupon-kind").addEventListener("change", couponKind);

$("issue-coupon").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("issue-coupon");
  const v = (id) => $(id).value.trim();
  const money = (id) => (v(id) ? { amount: v(id) } : null);
  const kind = v("coupon-kind");
  const offer = { kind };
  if (kind === "amount_off") Object.assign(offer, { threshold: money("coupon-threshold") || { amount: "0" }, off: money("coupon-off") });
  if (kind === "percent_off") Object.assign(offer, { percent: v("coupon-percent"), threshold: money("coupon-threshold"), cap: money("coupon-cap") });
  if (kind === "voucher") Object.assign(offer, { value: money("coupon-off"), threshold: money("coupon-threshold") });
  if (kind === "experience") offer.sku = v("coupon-sku");
  const today = shanghaiDay(0);
  const body = { name: v("coupon-name"), offer, valid_from: today, valid_to: v("coupon-to") || today };
  const r = await api("POST", `/api/v1/members/${member.member_id}/coupons`, body, keyFor("issue-coupon"));
  $("coupon-error").className = r.ok ? "ok" : "error";
  if (!r.ok) { showError(form, "coupon-error", r.data); return; }
  keyDone("issue-coupon");
  clearErrors(form);
  $("coupon-error").textContent = t("coupon_issued");
  ["coupon-name", "coupon-threshold", "coupon-off", "coupon-percent", "coupon-cap", "coupon-sku", "coupon-to"].forEach((id) => { $(id).value = ""; });
  await loadCoupons();
});

$("refund-stored").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("refund-stored");
  const amount = $("refund-amount").value.trim();
  if (!confirm(t("confirm_refund").replace("{a}", "¥" + amount))) return;
  const body = { amount: { amount }, reason: $("refund-reason").value.trim() };
  const r = await api("POST", `/api/v1/members/${member.member_id}/refunds`, body, keyFor("refund-stored"));
  $("refund-error").className = r.ok ? "ok" : "error";
  if (!r.ok) { showError(form, "refund-error", r.data); return; }
  keyDone("refund-stored");
  clearErrors(form);
  $("refund-error").textContent = `${t("refunded")} ¥${amount}`;
  $("refund-amount").value = "";
  $("refund-reason").value = "";
  await showMember(member);
});
