// 商品资料: the chain's products (search by SKU, name or barcode), and a product added or
// changed — price, special price (特价) with its dates, barcode, low-stock line, the stores that
// carry it (门店经营品项: none named, every store) — published as the catalogue's next version
// to the stores that carry it. Uses app.js's helpers ($, api, said, cell,
// markField, lang, staffId).
"use strict";

const CAT_EN = {
  "商品资料": "Catalogue", "搜索（编码、名称或条码）": "Search (SKU, name or barcode)", "查询": "Search",
  "编码": "SKU", "名称": "Name", "条码": "Barcode", "部门": "Department", "类别": "Category", "单位": "Unit",
  "件": "piece", "千克": "kg", "售价 (元)": "Price (CNY)", "特价 (元)": "Special (CNY)", "特价起": "Special from",
  "特价止": "Special to", "库存预警线": "Low-stock line", "发布到所有门店": "Publish to every store",
  "新增或修改商品（同编码即修改）": "Add or change a product (the same SKU changes it)", "已发布，目录版本": "Published: catalogue version",
  "编辑": "Edit", "套餐（几样商品合一个价）": "Bundles (several products at one price)", "内容": "Items",
  "套餐价 (元)": "Bundle price (CNY)", "启用": "Active", "内容（每行：编码,数量）": "Items (one per line: SKU,qty)",
  "门店价（该店不按总部价卖）": "Store prices (a store selling off the chain's price)", "门店": "Store",
  "门店价 (元)": "Store price (CNY)", "门店价 (元)（空 = 恢复总部价）": "Store price (CNY; empty = the chain's price)",
  "发布到该门店": "Publish to the store", "发布": "Publish",
  "经营门店（逗号分隔，空 = 所有门店）": "Stores that carry it (comma-separated; empty = every store)",
  "如 S001,S002": "e.g. S001,S002", "经营门店": "Carried at", "所有门店": "every store",
  "门店（如 S001）": "Store (e.g. S001)", "只看该门店经营的商品（门店经营品项）": "Only the products this store carries (its assortment)", "恢复总部价": "Back to the chain's price", "是": "yes", "否": "no",
};
const CL = (zh) => (lang === "zh" ? zh : CAT_EN[zh] || zh);
function catalogueLang() {
  document.querySelectorAll("#catalogue [data-zh]").forEach((el) => { el.textContent = CL(el.dataset.zh); });
  document.querySelectorAll("#catalogue [data-zh-placeholder]").forEach((el) => { el.placeholder = CL(el.dataset.zhPlaceholder); });
  document.querySelectorAll("#catalogue [data-zh-title]").forEach((el) => { el.title = CL(el.dataset.zhTitle); });
}
catalogueLang();
$("lang").addEventListener("click", () => setTimeout(catalogueLang));

async function catalogue() {
  const q = encodeURIComponent($("cat-q").value.trim());
  // 门店经营品项: with a store named, the products that store carries only.
  const store = encodeURIComponent($("cat-store").value.trim().toUpperCase());
  const r = await api(`/api/v1/catalogue/products?limit=200&q=${q}&store=${store}`);
  if (!r.ok) { $("cat-error").textContent = said(r.data); return; }
  const v = await api("/api/v1/catalogue");
  $("cat-version").textContent = v.ok ? `v${v.data.version}` : "";
  const body = $("cat-table").querySelector("tbody");
  body.innerHTML = "";
  for (const p of r.data.products) {
    const tr = document.createElement("tr");
    const special = p.special ? `¥${p.special.price.amount}（${p.special.from}~${p.special.to}）` : "";
    [p.sku, p.name, (p.barcodes || []).join(" "), p.category, p.unit === "kg" ? CL("千克") : CL("件"),
      p.price ? `¥${p.price.amount}` : "", special, p.low_stock || "",
      p.stores ? p.stores.join(", ") : CL("所有门店")].forEach((x) => cell(tr, x));
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = CL("编辑");
    b.addEventListener("click", () => editProduct(p));
    cell(tr, "").appendChild(b);
    body.appendChild(tr);
  }
}

// The product being changed: what the form does not show (points, discounts, active) is kept.
let editing = null;

function editProduct(row) {
  // Where it is carried is not part of the product: it goes as a change of its own.
  const p = Object.assign({}, row);
  delete p.stores;
  editing = p;
  editingStores = row.stores || null;
  const f = $("cat-form");
  f.sku.value = p.sku; f.name.value = p.name; f.barcode.value = (p.barcodes || [])[0] || "";
  f.department.value = p.department || ""; f.category.value = p.category || ""; f.unit.value = p.unit || "piece";
  f.price.value = p.price ? p.price.amount : ""; f.low_stock.value = p.low_stock || "";
  f.special_price.value = p.special ? p.special.price.amount : "";
  f.special_from.value = p.special ? p.special.from : ""; f.special_to.value = p.special ? p.special.to : "";
  f.stores.value = editingStores ? editingStores.join(",") : "";
  f.name.focus();
}

// Where the product being edited is carried, as headquarters said (null: every store).
let editingStores = null;

$("cat-search").addEventListener("submit", (e) => { e.preventDefault(); catalogue(); });
$("cat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = $("cat-form");
  const v = (name) => f[name].value.trim();
  const product = {
    sku: v("sku"), name: v("name"), barcodes: v("barcode") ? [v("barcode")] : [],
    department: v("department"), category: v("category"), unit: f.unit.value,
    price: v("price") ? { amount: v("price") } : null,
  };
  product.low_stock = v("low_stock") || null;
  product.special = v("special_price") ? { price: { amount: v("special_price") }, from: v("special_from"), to: v("special_to") } : null;
  const whole = editing && editing.sku === product.sku ? Object.assign({}, editing, product) : product;
  const changes = [{ product: whole }];
  // 门店经营品项: named stores, or back to every store when it had some and the field is cleared.
  const stores = v("stores").split(/[,，\s]+/).filter((x) => x);
  const had = editing && editing.sku === product.sku ? editingStores : null;
  if (stores.length || had) changes.push({ carried: { sku: product.sku, stores: stores.length ? stores : null } });
  const r = await api("/api/v1/catalogue/changes", false, "POST", { changes }, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(f, "cat-error", r.data); return; }
  markField(f, "cat-error", {});
  okLine("cat-error", `${CL("已发布，目录版本")} ${r.data.version}`);
  await catalogue();
});

window.catalogueScreen = async () => { await catalogue(); await prices(); };
