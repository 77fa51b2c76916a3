// 门店后台's stock: levels with the alerts (库存预警); a stocktake (盘点) opened on the ticked
// SKUs — the expected counts are taken then, sales go on — and closed with what was counted,
// the differences moving the stock; goods received (进货) or written off (报损), a line per
// SKU or barcode.
"use strict";

async function loadStock() {
  const r = await api("GET", "/api/v1/stock" + ($("office-low").checked ? "?alerts=low" : ""));
  const body = $("office-stock").querySelector("tbody");
  body.innerHTML = "";
  $("office-all").checked = false;
  for (const s of (r.ok && r.data.stock) || []) {
    const tr = document.createElement("tr");
    const tick = document.createElement("input");
    tick.type = "checkbox";
    tick.value = s.sku;
    cell(tr, "").appendChild(tick);
    [s.sku, s.name || "", s.on_hand, s.low_stock || ""].forEach((x) => cell(tr, x));
    const flag = cell(tr, s.negative ? t("negative") : s.low ? t("low") : "");
    if (s.low || s.negative) flag.className = "warn";
    body.appendChild(tr);
  }
}
$("office-low").addEventListener("change", loadStock);
$("office-all").addEventListener("change", () => {
  $("office-stock").querySelectorAll("tbody input[type=checkbox]").forEach((c) => { c.checked = $("office-all").checked; });
});

$("stocktake-open").addEventListener("click", async () => {
  const skus = Array.from($("office-stock").querySelectorAll("tbody input:checked"), (c) => c.value);
  if (!skus.length) { $("stocktake-error").textContent = t("stocktake_pick"); return; }
  const r = await api("POST", "/api/v1/stocktakes", { skus }, keyFor("stocktake-" + skus.join(",")));
  $("stocktake-error").textContent = r.ok ? "" : said(r.data);
  if (r.ok) keyDone("stocktake-" + skus.join(","));
  await loadStocktakes();
  await loadStock();
});

// Each open stocktake: a count per line, all lines counted before it closes.
async function loadStocktakes() {
  const r = await api("GET", "/api/v1/stocktakes");
  const box = $("stocktakes");
  box.innerHTML = "";
  for (const st of (r.ok && r.data.stocktakes) || []) {
    const form = document.createElement("form");
    form.className = "stocktake";
    form.autocomplete = "off";
    const h = document.createElement("h3");
    h.textContent = `${t("stocktake")} ${st.id} · ${new Date(st.opened_ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: "Asia/Shanghai" })}`;
    form.appendChild(h);
    const table = document.createElement("table");
    table.innerHTML = `<thead><tr><th>${t("sku")}</th><th>${t("product")}</th><th>${t("expected")}</th><th>${t("counted")}</th></tr></thead><tbody></tbody>`;
    for (const l of st.lines) {
      const tr = document.createElement("tr");
      [l.sku, l.name || "", l.expected].forEach((x) => cell(tr, x));
      const input = document.createElement("input");
      input.dataset.sku = l.sku;
      input.inputMode = "decimal";
      input.className = "count";
      input.required = true;
      cell(tr, "").appendChild(input);
      table.querySelector("tbody").appendChild(tr);
    }
    form.appendChild(table);
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.textContent = t("stocktake_close");
    form.appendChild(submit);
    const said_ = document.createElement("p");
    said_.className = "error";
    form.appendChild(said_);
    form.addEventListener("submit", (e) => { e.preventDefault(); countStocktake(st, form, said_); });
    box.appendChild(form);
  }
}

async function countStocktake(st, form, line) {
  const inputs = form.querySelectorAll("input.count");
  const counts = st.lines.map((l, i) => ({ sku: l.sku, qty: inputs[i].value.trim() }));
  const r = await api("POST", `/api/v1/stocktakes/${encodeURIComponent(st.id)}/counts`, { counts }, keyFor("count-" + st.id));
  if (!r.ok) { line.textContent = said(r.data); return; }
  keyDone("count-" + st.id);
  const moved = st.lines
    .map((l, i) => [l, Number(counts[i].qty) - Number(l.expected)])
    .filter(([, d]) => d !== 0)
    .map(([l, d]) => `${l.name || l.sku} ${d > 0 ? "+" : ""}${Math.round(d * 1000) / 1000}`);
  $("stocktake-error").className = "ok";
  $("stocktake-error").textContent = `${t("stocktake_done")} ${st.id}` + (moved.length ? ` · ${t("stocktake_moved")} ${moved.join("，")}` : ` · ${t("stocktake_even")}`);
  await loadStocktakes();
  await loadStock();
}

// 进货 or 报损: one form, the kind chosen above it.
function goodsKind() {
  const damage = $("goods-kind").value === "damage";
  $("supplier-row").hidden = damage;
  $("damage-row").hidden = !damage;
  $("office-goods-submit").textContent = t(damage ? "write_off_button" : "receive_button");
}
$("goods-kind").addEventListener("change", goodsKind);

$("office-receive").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("office-receive");
  const damage = $("goods-kind").value === "damage";
  $("office-done").textContent = "";
  const { lines, bad } = goodsLines($("office-lines").value);
  if (bad !== undefined) { showError(form, "office-error", { field: "lines", message: t("line_bad"), detail: bad }); return; }
  const r = damage
    ? await api("POST", "/api/v1/stock/damages", { reason: $("office-reason").value.trim(), lines }, keyFor("office-receive"))
    : await api("POST", "/api/v1/stock/receipts", { supplier: $("office-supplier").value.trim(), lines }, keyFor("office-receive"));
  if (!r.ok) { showError(form, "office-error", r.data); return; }
  clearErrors(form);
  keyDone("office-receive");
  $("office-error").textContent = "";
  $("office-lines").value = "";
  $("office-done").textContent = t(damage ? "written_off_ok" : "received_ok") + (r.data.document ? ` · ${r.data.document}` : "");
  await loadStock();
});
