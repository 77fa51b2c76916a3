// 调拨单: the chain's transfer queue, approved or rejected here; what arrived differently from
// what was shipped shown line by line.
"use strict";

// What arrived differently from what was shipped, line by line, then the receiver's note.
function discrepancy(tr) {
  if (tr.state !== "received") return "";
  const got = new Map((tr.received || []).map(([sku, qty]) => [sku, qty]));
  const sent = new Map((tr.shipped || []).map(([sku, qty]) => [sku, qty]));
  const lines = [...new Set([...sent.keys(), ...got.keys()])]
    .filter((sku) => Number(sent.get(sku) || 0) !== Number(got.get(sku) || 0))
    .map((sku) => `${sku} ${t("sent")} ${sent.get(sku) || 0} ${t("got")} ${got.get(sku) || 0}`);
  if (tr.discrepancy) lines.push(`“${tr.discrepancy}”`);
  return lines.join("；");
}

// 调拨单: the queue, approved or rejected here; discrepancies shown as received.
async function transfers() {
  const state = $("tqueue-state").value;
  const r = await api("/api/v1/transfers" + (state ? "?state=" + state : ""));
  $("tqueue-error").textContent = r.ok ? "" : said(r.data);
  const body = $("tqueue-table").querySelector("tbody");
  body.innerHTML = "";
  for (const tr of (r.ok && r.data.transfers) || []) {
    const row = document.createElement("tr");
    cell(row, tr.id);
    cell(row, `${tr.from} → ${tr.to}`);
    cell(row, tr.lines.map(([sku, qty]) => `${sku}×${qty}`).join("，"));
    cell(row, t("st_" + tr.state));
    cell(row, discrepancy(tr));
    const actions = cell(row, "");
    if (tr.state === "requested") {
      for (const step of ["approve", "reject"]) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = t(step);
        b.dataset.step = step;
        b.addEventListener("click", async () => {
          const done = await api(`/api/v1/transfers/${tr.id}/${step}`, false, "POST", step === "reject" ? { reason: "总部驳回" } : {});
          $("tqueue-error").textContent = done.ok ? "" : said(done.data);
          transfers();
        });
        actions.appendChild(b);
      }
    }
    body.appendChild(row);
  }
}
$("tqueue").addEventListener("submit", (e) => { e.preventDefault(); transfers(); });
