// 门店后台 (a manager's screen; the node refuses a cashier's writes): today's figures and
// tenders from the store's own report, its stock with the alerts (库存预警), goods received
// (进货, a line per SKU or barcode) and the transfers it takes part in, shipped and received.
"use strict";

async function loadOffice() {
  const today = new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });
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
  await loadStock();
  await loadTransfers();
}

async function loadStock() {
  const r = await api("GET", "/api/v1/stock" + ($("office-low").checked ? "?alerts=low" : ""));
  const body = $("office-stock").querySelector("tbody");
  body.innerHTML = "";
  for (const s of (r.ok && r.data.stock) || []) {
    const tr = document.createElement("tr");
    [s.sku, s.name || "", s.on_hand, s.low_stock || ""].forEach((x) => cell(tr, x));
    const flag = cell(tr, s.negative ? t("negative") : s.low ? t("low") : "");
    if (s.low || s.negative) flag.className = "warn";
    body.appendChild(tr);
  }
}
$("office-low").addEventListener("change", loadStock);

$("office-receive").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("office-receive");
  $("office-done").textContent = "";
  const lines = [];
  for (const line of $("office-lines").value.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const p = line.split(/[,，\s]+/);
    if (p.length !== 2 || !p[0] || !p[1]) { showError(form, "office-error", { field: "lines", message: t("line_bad"), detail: line }); return; }
    lines.push(/^\d{8,14}$/.test(p[0]) ? { barcode: p[0], qty: p[1] } : { sku: p[0], qty: p[1] });
  }
  const r = await api("POST", "/api/v1/stock/receipts", { supplier: $("office-supplier").value.trim(), lines }, keyFor("office-receive"));
  if (!r.ok) { showError(form, "office-error", r.data); return; }
  clearErrors(form);
  keyDone("office-receive");
  $("office-error").textContent = "";
  $("office-lines").value = "";
  $("office-done").textContent = t("received_ok") + (r.data.document ? ` · ${r.data.document}` : "");
  await loadStock();
});

async function loadTransfers() {
  const r = await api("GET", "/api/v1/transfers");
  const here = ($("store").textContent.split("·").pop() || "").trim();
  const body = $("office-transfers").querySelector("tbody");
  body.innerHTML = "";
  for (const x of (r.ok && r.data.transfers) || []) {
    const tr = document.createElement("tr");
    cell(tr, x.id);
    cell(tr, `${x.from} → ${x.to}`);
    cell(tr, x.lines.map(([sku, qty]) => `${sku}×${qty}`).join(" "));
    cell(tr, t("st_" + x.state));
    const step = x.state === "approved" && x.from === here ? "ship" : x.state === "shipped" && x.to === here ? "receive" : null;
    const c = cell(tr, "");
    if (step) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = t(step);
      b.addEventListener("click", async () => {
        const w = await api("POST", `/api/v1/transfers/${encodeURIComponent(x.id)}/${step}`, {}, keyFor(`${step}-${x.id}`));
        $("office-transfer-error").textContent = w.ok ? "" : said(w.data);
        if (w.ok) keyDone(`${step}-${x.id}`);
        await loadOffice();
      });
      c.appendChild(b);
    }
    body.appendChild(tr);
  }
}
