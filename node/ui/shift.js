// 交班: the cashier's shift so far — sales, returns, top-ups and cards by tender, and the cash
// the drawer should hold — closed with the cash counted; the page shows the difference. The
// 交班检查 button says whether everything has reached headquarters.
"use strict";

async function loadShift() {
  const r = await api("GET", "/api/v1/shift");
  if (!r.ok) { $("shift-error").textContent = said(r.data); return; }
  const s = r.data.shift;
  $("shift-opened").textContent = r.data.open
    ? `${t("shift_opened")} ${new Date(s.opened_ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: "Asia/Shanghai" })}`
    : t("shift_none");
  const n = (count, money) => `${count} ${t("count_unit")} ${yuan(money)}`;
  $("shift-summary").textContent = [
    `${t("shift_sales")} ${n(s.sales, s.sales_amount)}`,
    `${t("shift_returns")} ${n(s.returns, s.returned)}`,
    `${t("shift_topups")} ${yuan(s.top_ups)}`,
    `${t("shift_cards")} ${yuan(s.cards_sold)}`,
    `${t("shift_refunds")} ${yuan(s.refunded_cash)}`,
  ].join(" · ");
  const body = $("shift-tenders").querySelector("tbody");
  body.innerHTML = "";
  for (const x of s.tenders) {
    const tr = document.createElement("tr");
    const name = x.kind.startsWith("foreign_cash:") ? x.kind.slice(13) : t("t_" + x.kind);
    const money = (m) => (m.currency && m.currency !== "CNY" ? `${m.amount} ${m.currency}` : yuan(m));
    cell(tr, name);
    cell(tr, `${money(x.taken)}（${x.times}）`);
    cell(tr, `${money(x.paid_back)}（${x.refunds}）`);
    body.appendChild(tr);
  }
  $("shift-expected").textContent = yuan(s.cash_expected);
}

$("shift-close").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("shift-close");
  $("shift-done").textContent = "";
  const r = await api("POST", "/api/v1/shift/close", { counted: { amount: $("shift-counted").value.trim() } }, keyFor("shift-close"));
  if (!r.ok) { showError(form, "shift-error", r.data); return; }
  clearErrors(form);
  keyDone("shift-close");
  $("shift-error").textContent = "";
  $("shift-counted").value = "";
  $("shift-done").textContent = `${t("shift_closed")} ${yuan(r.data.counted)} · ${t("cash_expected")} ${yuan(r.data.shift.cash_expected)} · ${t("shift_diff")} ${yuan(r.data.difference)}`;
  await loadShift();
});
