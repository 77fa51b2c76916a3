// 门店后台 (a manager's screen; the node refuses a cashier's writes): today's figures and
// tenders from the store's own report, and the store's members over today, 7 or 30 days
// (who came, how often, what they spent; phones masked). Stock and stocktakes are stock.js's,
// transfers transfers.js's; `goodsLines` is shared by both.
"use strict";

// Lines typed as "SKU or barcode, quantity", one per line: what the node's line fields take,
// or the line that cannot be read.
function goodsLines(text) {
  const lines = [];
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const p = line.split(/[,，\s]+/);
    if (p.length !== 2 || !p[0] || !p[1]) return { bad: line };
    lines.push(/^\d{8,14}$/.test(p[0]) ? { barcode: p[0], qty: p[1] } : { sku: p[0], qty: p[1] });
  }
  return { lines };
}

// The store's calendar day, `back` days ago.
function shanghaiDay(back) {
  return new Date(Date.now() - back * 86400000).toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });
}

async function loadOffice() {
  const today = shanghaiDay(0);
  $("office-date").textContent = today;
  const [day, tenders] = await Promise.all([
    api("GET", `/api/v1/reports/sales?from=${today}&to=${today}&by=day`),
    api("GET", `/api/v1/reports/sales?from=${today}&to=${today}&by=tender`),
  ]);
  const row = day.ok && day.data.rows[0];
  $("office-figures").textContent = row
    ? `${t("shift_sales")} ${row.sales} ${t("count_unit")} ${yuan(row.net)} · ${t("shift_returns")} ${row.returns} ${t("count_unit")} ${yuan(row.returned)}`
    : t("shift_none");
  const tb = $("office-tenders");
  tb.querySelector("tbody").innerHTML = "";
  for (const r of (tenders.ok && tenders.data.rows) || []) {
    const tr = document.createElement("tr");
    cell(tr, t("t_" + r.tender));
    cell(tr, yuan(r.paid));
    tb.querySelector("tbody").appendChild(tr);
  }
  await Promise.all([loadMembersReport(), loadStock(), loadStocktakes(), loadTransfers()]);
}

async function loadMembersReport() {
  const from = shanghaiDay(Number($("office-period").value));
  const r = await api("GET", `/api/v1/reports/members?from=${from}&to=${shanghaiDay(0)}&limit=200`);
  const body = $("office-member-table").querySelector("tbody");
  body.innerHTML = "";
  if (!r.ok) { $("office-members").textContent = said(r.data); return; }
  const d = r.data;
  $("office-members").textContent = t("members_summary")
    .replace("{joined}", d.joined).replace("{active}", d.active).replace("{returning}", d.returning)
    .replace("{spent}", yuan(d.spent)).replace("{per}", yuan(d.spend_per_active_member));
  for (const m of d.members) {
    const tr = document.createElement("tr");
    [m.name, m.phone_masked, m.days, yuan(m.net_after_returns)].forEach((x) => cell(tr, x));
    body.appendChild(tr);
  }
}
$("office-period").addEventListener("change", loadMembersReport);
