"use strict";

// 退货: a sale back the way it was paid (a manager's action; the node refuses others). An item
// sale's lines are listed with what is left of each, to take back in part.
let returning = null; // the sale whose lines are listed
async function listReturnLines() {
  const sale = $("return-sale").value.trim();
  const body = $("return-lines").querySelector("tbody");
  body.innerHTML = "";
  returning = null;
  $("return-lines").hidden = true;
  if (!sale) return;
  const r = await api("GET", `/api/v1/sales/${encodeURIComponent(sale)}`);
  if (!r.ok) { $("return-error").textContent = said(r.data); return; }
  $("return-error").textContent = "";
  returning = sale;
  if (!r.data.lines) return;
  r.data.lines.forEach((l, i) => {
    const left = parseFloat(l.qty) - parseFloat((r.data.returned || [])[i] || "0");
    const tr = document.createElement("tr");
    cell(tr, `${l.sku} × ${l.qty}`);
    cell(tr, l.net.amount);
    const input = document.createElement("input");
    input.value = String(left);
    input.dataset.line = i;
    input.inputMode = "decimal";
    cell(tr, "").appendChild(input);
    body.appendChild(tr);
  });
  $("return-lines").hidden = false;
}
$("return-sale").addEventListener("change", listReturnLines);
$("return").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("return");
  $("return-done").textContent = "";
  const sale = $("return-sale").value.trim();
  if (returning !== sale) { await listReturnLines(); if (!$("return-lines").hidden) return; }
  const body = { reason: $("return-reason").value.trim() };
  const qtys = [...$("return-lines").querySelectorAll("input")];
  if (!$("return-lines").hidden && qtys.length) {
    body.lines = qtys.filter((q) => parseFloat(q.value) > 0).map((q) => ({ line: Number(q.dataset.line), qty: q.value.trim() }));
  }
  const r = await api("POST", `/api/v1/sales/${encodeURIComponent(sale)}/returns`, body, keyFor("return"));
  if (!r.ok) { showError(form, "return-error", r.data); return; }
  keyDone("return");
  clearErrors(form);
  $("return-error").textContent = "";
  // A quick sale comes back whole; an item sale answers with its returns, the last one this.
  const back = r.data.returns && r.data.returns.length ? r.data.returns[r.data.returns.length - 1].amount : r.data.amount;
  $("return-done").textContent = `${t("refunded")} ${yuan(back)} · ${sale}`;
  $("return-sale").value = "";
  $("return-reason").value = "";
  $("return-lines").hidden = true;
  returning = null;
  if (member) showMember(member);
});

