// 商品资料's bundles (套餐: several products at one price) and store prices (门店价: a store that
// sells a product off the chain's price; cleared, the chain's price applies again), each
// published as the catalogue's next version. Uses catalogue.js's CL and app.js's helpers.
"use strict";

async function prices() {
  const [b, p] = await Promise.all([
    api("/api/v1/catalogue/bundles"),
    api("/api/v1/catalogue/store-prices" + ($("sprice-store").value.trim() ? "?store=" + encodeURIComponent($("sprice-store").value.trim()) : "")),
  ]);
  const bb = $("bundle-table").querySelector("tbody");
  bb.innerHTML = "";
  for (const x of (b.ok && b.data.bundles) || []) {
    const tr = document.createElement("tr");
    [x.id, x.name, x.items.map(([sku, qty]) => `${sku}×${qty}`).join(" "), `¥${x.price.amount}`, CL(x.active ? "是" : "否")].forEach((v) => cell(tr, v));
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = CL("编辑");
    edit.addEventListener("click", () => {
      const f = $("bundle-form");
      f.id.value = x.id; f.name.value = x.name; f.price.value = x.price.amount; f.active.checked = x.active;
      f.items.value = x.items.map(([sku, qty]) => `${sku},${qty}`).join("\n");
      f.name.focus();
    });
    cell(tr, "").appendChild(edit);
    bb.appendChild(tr);
  }
  const pb = $("sprice-table").querySelector("tbody");
  pb.innerHTML = "";
  for (const x of (p.ok && p.data.prices) || []) {
    const tr = document.createElement("tr");
    [x.store, x.sku, `¥${x.price.amount}`].forEach((v) => cell(tr, v));
    const clear = document.createElement("button");
    clear.type = "button";
    clear.textContent = CL("恢复总部价");
    clear.addEventListener("click", () => publish({ store_price: { store: x.store, sku: x.sku, price: null } }, $("sprice-form"), "sprice-error"));
    cell(tr, "").appendChild(clear);
    pb.appendChild(tr);
  }
}
window.prices = prices;

async function publish(change, form, line) {
  const r = await api("/api/v1/catalogue/changes", false, "POST", { changes: [change] }, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(form, line, r.data); return false; }
  markField(form, line, {});
  okLine(line, `${CL("已发布，目录版本")} ${r.data.version}`);
  await prices();
  return true;
}

$("bundle-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = $("bundle-form");
  const items = [];
  for (const line of f.items.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const p = line.split(/[,，\s]+/);
    if (p.length !== 2) { markField(f, "bundle-error", { field: "items", message: t("line_bad"), detail: line }); return; }
    items.push([p[0], p[1]]);
  }
  const bundle = { id: f.id.value.trim(), name: f.name.value.trim(), items, price: { amount: f.price.value.trim() }, active: f.active.checked };
  await publish({ bundle }, f, "bundle-error");
});

$("sprice-filter").addEventListener("submit", (e) => { e.preventDefault(); prices(); });
$("sprice-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = $("sprice-form");
  const price = f.price.value.trim();
  const change = { store_price: { store: f.store.value.trim(), sku: f.sku.value.trim(), price: price ? { amount: price } : null } };
  if (await publish(change, f, "sprice-error")) f.price.value = "";
});
