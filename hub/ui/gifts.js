// 积分商城: the gifts every store offers for points (one line per gift), published like the
// tier table, and what each store gave of each (积分兑换报表, CSV/Excel). Uses app.js's and
// reports.js's helpers ($, api, said, table, markField, download, lang).
"use strict";

const GIFTS_EN = {
  "积分商城": "Points mall", "发布到所有门店": "Publish to every store", "兑换报表": "Redemptions",
  "礼品（每行：编号,名称,积分,商品编码×数量 或 券:模板编号,每人限兑,每店数量[,下架]）":
    "Gifts (one per line: id,name,points,SKU×qty or 券:template id,per member,per store[,下架 to withdraw])",
  "尚未上架礼品": "No gifts published", "生效中": "In force", "已发布": "Published", "行格式不对": "line not understood",
  "门店收银时兑换（离线也可，在本店的积分额度内）；券类礼品会员也可在会员页自助兑换（总部数量）。每店数量是该店可兑出的总数，总部上调即补货。":
    "Members redeem at a till (offline too, within the points the store holds); coupon gifts also on the member's own page (headquarters' allotment). A store's figure is all it may give; publish a larger one to restock.",
  "合计": "Total",
};
const GL = (zh) => (lang === "zh" ? zh : GIFTS_EN[zh] || zh);
function giftsLang() {
  document.querySelectorAll("#gifts [data-zh]").forEach((el) => { el.textContent = GL(el.dataset.zh); });
}
giftsLang();
$("lang").addEventListener("click", () => setTimeout(giftsLang));

// One line as the API's gift; a line that does not parse is named.
function giftOf(line) {
  const p = line.split(/[,，]/).map((x) => x.trim());
  const bad = { field: "gifts", message: GL("行格式不对"), detail: line };
  if (p.length < 6 || p.length > 7) throw bad;
  const [id, name, points, what, perMember, stock, off] = p;
  let kind;
  const coupon = what.match(/^券[:：](.+)$/);
  const goods = what.match(/^(.+?)\s*[×xX*]\s*(\d+)$/);
  if (coupon) kind = { coupon: { template: coupon[1].trim() } };
  else if (goods) kind = { goods: { sku: goods[1].trim(), qty: Number(goods[2]) } };
  else kind = { goods: { sku: what, qty: 1 } };
  const n = (s) => (/^\d+$/.test(s) ? Number(s) : NaN);
  if ([points, perMember, stock].some((s) => Number.isNaN(n(s)))) throw bad;
  return { id, name, points: n(points), kind, per_member: n(perMember), stock: n(stock), withdrawn: off === "下架" || /^off$/i.test(off || "") };
}

const giftLine = (g) => {
  const what = g.kind.coupon ? `券:${g.kind.coupon.template}` : `${g.kind.goods.sku}×${g.kind.goods.qty}`;
  return `${g.id},${g.name},${g.points},${what},${g.per_member},${g.stock}${g.withdrawn ? ",下架" : ""}`;
};

async function giftsScreen() {
  const [r, report] = await Promise.all([api("/api/v1/gifts"), api("/api/v1/reports/gifts")]);
  if (r.ok) {
    const current = r.data.current;
    const at = (ms) => new Date(ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" });
    $("gifts-source").textContent = current ? `${GL("生效中")}：${at(current.published_at_ms)} · ${current.staff_name || current.staff}` : GL("尚未上架礼品");
    if (current) $("gifts-lines").value = current.table.gifts.map(giftLine).join("\n");
  }
  if (report.ok) {
    const rows = report.data.rows.map((row) => ({ gift: row.gift, name: row.name || "", store: row.store, redeemed: row.redeemed, points: row.points, left: row.left === null ? "" : row.left }));
    table("gifts-report", rows, { gift: "礼品", name: "名称", store: "门店", redeemed: "兑换次数", points: "消耗积分", left: "剩余" });
    const total = report.data.total;
    $("gifts-total").textContent = `${GL("合计")}：${total.redeemed} · ${total.points} ${lang === "zh" ? "积分" : "points"}`;
  }
}

$("gifts-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("gifts-form");
  let body;
  try {
    body = { gifts: $("gifts-lines").value.split("\n").map((l) => l.trim()).filter(Boolean).map(giftOf) };
  } catch (bad) { markField(form, "gifts-error", bad); return; }
  const r = await api("/api/v1/gifts", false, "PUT", body, { "X-Staff-Id": staffId() });
  // Every gift field the server names is on the one textarea.
  if (!r.ok) { markField(form, "gifts-error", Object.assign({}, r.data, { field: r.data.field && "gifts" })); return; }
  markField(form, "gifts-error", {});
  $("gifts-error").textContent = GL("已发布");
  await giftsScreen();
});
$("gifts-csv").addEventListener("click", () => download("csv", "/api/v1/reports/gifts?format=csv"));
$("gifts-xlsx").addEventListener("click", () => download("xlsx", "/api/v1/reports/gifts?format=xlsx"));

window.giftsScreen = giftsScreen;
