// 收银: the cart. Scanned lines (a barcode scanner types digits and Enter) or one-touch
// favourites, priced by the node's own quote line by line as they come, then paid by any mix of
// points, stored value, WeChat, Alipay, card and cash in one panel. Typing *3 (or x3) sets the
// last line's quantity; − and + change any line's. 挂单 parks the basket at this store; 取单
// brings one back.
"use strict";

let basket = []; // [{code, barcode: bool, qty, name}]
let basketKey = null;
let heldOrder = null;
let moreCoupons = []; // 多券同用: coupons redeemed after the one chosen in #pay-coupon

// The coupons the sale redeems: the one chosen, then the more added from the member's list.
function withCoupons(body) {
  if ($("pay-coupon").value) body.coupon = $("pay-coupon").value;
  const more = moreCoupons.filter((c) => c !== $("pay-coupon").value);
  if (more.length) body.coupons = more;
  return body;
}

// Adds a coupon to the sale: the first goes in the select, the rest in the list beside it.
function addCoupon(id) {
  if (!$("pay-coupon").value) $("pay-coupon").value = id;
  else if ($("pay-coupon").value !== id && !moreCoupons.includes(id)) moreCoupons.push(id);
  showMoreCoupons();
}

function showMoreCoupons() {
  const box = $("pay-coupons-more");
  box.innerHTML = "";
  for (const id of moreCoupons) {
    const b = document.createElement("button");
    b.type = "button";
    const option = [...$("pay-coupon").options].find((o) => o.value === id);
    b.textContent = `+ ${option ? option.textContent : id} ×`;
    b.title = t("remove_coupon");
    b.addEventListener("click", () => { moreCoupons = moreCoupons.filter((c) => c !== id); showMoreCoupons(); requote(); });
    box.appendChild(b);
  }
}

async function requote() {
  basketKey = null;
  keyDone("hold");
  const body = $("basket").querySelector("tbody");
  body.innerHTML = "";
  if (!basket.length) {
    ["basket-subtotal", "basket-discount", "basket-due"].forEach((id) => { $(id).textContent = "¥0.00"; });
    $("basket-points").textContent = "0";
    return;
  }
  const q = { lines: basketLines(), points: parseInt($("pay-points").value || "0", 10) || 0 };
  if (member) q.member_id = member.member_id;
  withCoupons(q);
  const r = await api("POST", "/api/v1/checkouts/quote", q);
  if (!r.ok) { $("pay-error").textContent = said(r.data); return; }
  $("pay-error").textContent = "";
  r.data.lines.forEach((l, i) => {
    const tr = document.createElement("tr");
    const steps = l.steps.map((s) => `${s.note} -${s.off.amount}`).join("；");
    cell(tr, basket[i].name || l.sku);
    const qty = cell(tr, "");
    qty.className = "qty";
    const step = (label, by) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.tabIndex = -1; // the keyboard sets quantities with *N; the buttons are for touch
      b.addEventListener("click", () => setQty(i, basket[i].qty + by));
      return b;
    };
    qty.append(step("−", -1), Object.assign(document.createElement("span"), { textContent: l.qty }), step("+", 1));
    [l.unit_price.amount, steps, l.net.amount].forEach((v) => cell(tr, v));
    body.appendChild(tr);
  });
  $("basket-subtotal").textContent = yuan(r.data.subtotal);
  $("basket-discount").textContent = yuan(r.data.discount);
  $("basket-due").textContent = yuan(r.data.due);
  $("basket-points").textContent = r.data.points_earned;
}

function basketLines() {
  return basket.map((l) => (l.barcode ? { barcode: l.code, qty: String(l.qty) } : { sku: l.code, qty: String(l.qty) }));
}

// A line's quantity; 0 takes the line off.
async function setQty(i, qty) {
  if (!basket[i] || !(qty >= 0) || qty > 9999) return;
  if (qty === 0) basket.splice(i, 1); else basket[i].qty = qty;
  await requote();
  $("scan-code").focus();
}

// 常用商品: one touch adds a line (this store's best sellers of the last 30 days).
async function loadFavourites() {
  const r = await api("GET", "/api/v1/products/favourites?limit=12");
  const box = $("favourites");
  if (!r.ok) return;
  box.innerHTML = "";
  for (const p of r.data.products) {
    const b = document.createElement("button");
    b.type = "button";
    b.tabIndex = -1;
    b.innerHTML = "<span></span><small></small>";
    b.firstChild.textContent = p.name;
    b.lastChild.textContent = p.price_here ? "¥" + p.price_here.amount : "";
    b.addEventListener("click", () => addLine(p.sku, false, p.name));
    box.appendChild(b);
  }
}

async function addLine(code, barcode, name) {
  const found = basket.find((l) => l.code === code);
  if (found) found.qty += 1; else basket.push({ code, barcode, qty: 1, name });
  $("items-paid").hidden = true;
  await requote();
  $("scan-code").focus();
}

$("scan").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("scan-code").value.trim();
  $("scan-code").value = "";
  if (!code) return;
  const times = /^[*xX×](\d{1,4})$/.exec(code);
  if (times) { if (basket.length) await setQty(basket.length - 1, parseInt(times[1], 10)); return; }
  const barcode = /^\d{8,14}$/.test(code);
  const found = basket.find((l) => l.code === code);
  if (found) { found.qty += 1; await requote(); return; }
  const p = await api("GET", barcode ? "/api/v1/products?barcode=" + code : "/api/v1/products/" + encodeURIComponent(code));
  if (!p.ok) { $("pay-error").textContent = said(p.data); return; }
  basket.push({ code, barcode, qty: 1, name: p.data.name });
  $("items-paid").hidden = true;
  await requote();
});

function clearBasket() {
  basket = [];
  heldOrder = null;
  $("pay-coupon").value = "";
  moreCoupons = [];
  showMoreCoupons();
  requote();
}

$("basket-clear").addEventListener("click", () => { clearBasket(); $("scan-code").focus(); });
$("pay-points").addEventListener("change", requote);
$("pay-coupon").addEventListener("change", requote);
["pay-stored", "pay-wechat", "pay-alipay", "pay-card", "pay-card-ref", "pay-cash", "pay-foreign", "pay-foreign-currency"].forEach((id) => $(id).addEventListener("input", () => { basketKey = null; }));

$("basket-hold").addEventListener("click", async () => {
  if (!basket.length) return;
  const body = { lines: basket.map((l) => ({ [l.barcode ? "barcode" : "sku"]: l.code, qty: String(l.qty) })), points: parseInt($("pay-points").value || "0", 10) || 0 };
  if (member) body.member_id = member.member_id;
  withCoupons(body);
  const r = await api("POST", "/api/v1/orders/held", body, keyFor("hold"));
  if (!r.ok) { $("pay-error").textContent = said(r.data); return; }
  keyDone("hold");
  clearBasket();
  clearMember();
  $("scan-code").focus();
});

$("basket-recall").addEventListener("click", async () => {
  const r = await api("GET", "/api/v1/orders/held");
  const list = $("held");
  list.innerHTML = "";
  list.hidden = false;
  const orders = (r.ok && r.data.orders) || [];
  if (!orders.length) {
    const li = document.createElement("li");
    li.textContent = t("nothing_held");
    list.appendChild(li);
    return;
  }
  for (const o of orders) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    const at = new Date(o.held_at_ms).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en");
    b.textContent = `${t("held_note")} ${at} · ${o.lines.length} ${t("lines")} · ${yuan(o.due_now)}`;
    b.addEventListener("click", () => recall(o));
    li.appendChild(b);
    list.appendChild(li);
  }
  list.querySelector("button").focus();
});

async function recall(o) {
  $("held").hidden = true;
  if (o.member_id) await openMember(o.member_id); else clearMember();
  basket = [];
  for (const l of o.lines) {
    const p = await api("GET", "/api/v1/products/" + encodeURIComponent(l.sku));
    basket.push({ code: l.sku, barcode: false, qty: parseFloat(l.qty), name: p.ok ? p.data.name : l.sku });
  }
  heldOrder = o.order_id;
  $("pay-points").value = o.points || "";
  if (o.coupon) $("pay-coupon").value = o.coupon;
  moreCoupons = o.coupons || [];
  showMoreCoupons();
  await requote();
  $("pay-cash").focus();
}

$("pay").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!basket.length || $("pay-submit").disabled) return;
  const tenders = [];
  const v = (id) => $(id).value.trim();
  const ref = v("pay-card-ref");
  if (v("pay-stored")) tenders.push({ kind: "stored_value", amount: { amount: v("pay-stored") } });
  if (v("pay-wechat")) tenders.push({ kind: "wechat", amount: { amount: v("pay-wechat") }, reference: ref });
  if (v("pay-alipay")) tenders.push({ kind: "alipay", amount: { amount: v("pay-alipay") }, reference: ref });
  if (v("pay-card")) tenders.push({ kind: "card", amount: { amount: v("pay-card") }, reference: ref });
  if (v("pay-cash")) tenders.push({ kind: "cash", tendered: { amount: v("pay-cash") } });
  if (v("pay-foreign")) tenders.push({ kind: "foreign_cash", tendered: { amount: v("pay-foreign"), currency: $("pay-foreign-currency").value } });
  const body = { lines: basketLines(), tenders, points: parseInt(v("pay-points") || "0", 10) || 0 };
  if (member) body.member_id = member.member_id;
  withCoupons(body);
  if (heldOrder) body.held_order = heldOrder;
  if ($("pay-password").value) body.password = $("pay-password").value;
  basketKey = basketKey || newKey();
  $("pay-submit").disabled = true;
  const r = await api("POST", "/api/v1/checkouts/items", body, basketKey);
  $("pay-submit").disabled = false;
  if (!r.ok) {
    $("pay-error").textContent = said(r.data);
    if (r.data.code === "password_required" || r.data.code === "password_wrong") {
      $("pay-password-row").hidden = false;
      $("pay-password").value = "";
      $("pay-password").focus();
      basketKey = null;
    }
    return;
  }
  // Change is given in yuan, for yuan and for foreign cash alike.
  const change = (r.data.tenders || []).filter((x) => x.change).reduce((sum, x) => sum + parseFloat(x.change.amount), 0);
  $("items-paid").hidden = false;
  $("items-paid-amount").textContent = yuan(r.data.due);
  $("items-paid-change").textContent = "¥" + change.toFixed(2);
  $("items-paid").querySelectorAll("a.receipt").forEach((a) => { a.dataset.sale = r.data.sale_id; });
  ["pay-points", "pay-stored", "pay-wechat", "pay-alipay", "pay-card", "pay-card-ref", "pay-cash", "pay-foreign", "pay-password"].forEach((id) => { $(id).value = ""; });
  $("pay-password-row").hidden = true;
  $("pay-error").textContent = "";
  clearBasket();
  if (member) showMember(member);
  refreshLink();
  $("scan-code").focus();
});

