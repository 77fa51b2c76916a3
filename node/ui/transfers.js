// 门店后台's transfers (调拨): the ones this store takes part in, shipped (发货) or received
// (收货) here when it is this store's step, cancelled while only asked for; and a transfer asked
// for, into this store or out of it, which headquarters approves.
"use strict";

const hereStore = () => ($("store").textContent.split("·").pop() || "").trim();

async function loadTransfers() {
  const r = await api("GET", "/api/v1/transfers");
  const here = hereStore();
  const table = $("office-transfers");
  table.querySelector("thead").innerHTML = `<tr><th>${t("doc_no")}</th><th>${t("route")}</th><th>${t("product")}</th><th>${t("state")}</th><th></th></tr>`;
  const body = table.querySelector("tbody");
  body.innerHTML = "";
  for (const x of (r.ok && r.data.transfers) || []) {
    const tr = document.createElement("tr");
    cell(tr, x.id);
    cell(tr, `${x.from} → ${x.to}`);
    cell(tr, x.lines.map(([sku, qty]) => `${sku}×${qty}`).join(" "));
    cell(tr, t("st_" + x.state));
    const steps = [];
    if (x.state === "approved" && x.from === here) steps.push("ship");
    if (x.state === "shipped" && x.to === here) steps.push("receive");
    if (x.state === "requested") steps.push("cancel");
    const c = cell(tr, "");
    for (const step of steps) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = t(step === "cancel" ? "cancel_transfer" : step);
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

$("transfer-request").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("transfer-request");
  $("transfer-request-done").textContent = "";
  const { lines, bad } = goodsLines($("transfer-lines").value);
  if (bad !== undefined) { showError(form, "transfer-request-error", { field: "lines", message: t("line_bad"), detail: bad }); return; }
  const other = $("transfer-store").value.trim();
  const into = $("transfer-way").value === "in";
  const body = { from: into ? other : hereStore(), to: into ? hereStore() : other, lines, note: $("transfer-note").value.trim() };
  const r = await api("POST", "/api/v1/transfers", body, keyFor("transfer-request"));
  if (!r.ok) { showError(form, "transfer-request-error", r.data); return; }
  clearErrors(form);
  keyDone("transfer-request");
  $("transfer-request-error").textContent = "";
  $("transfer-lines").value = "";
  $("transfer-note").value = "";
  $("transfer-request-done").textContent = `${t("transfer_asked")} ${r.data.id || ""}`;
  await loadTransfers();
});
