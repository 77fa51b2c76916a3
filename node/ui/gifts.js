// 积分兑换 on 会员详情: the gifts headquarters offers for points, what this store has left of
// each and what this member has had; a gift given for its points (a coupon at once, goods off
// this store's shelf). The node asks headquarters when the points are held at other stores.
"use strict";

async function loadGifts() {
  if (!member) return;
  const r = await api("GET", `/api/v1/gifts?member_id=${member.member_id}`);
  const body = $("gifts").querySelector("tbody");
  body.innerHTML = "";
  const gifts = ((r.ok && r.data.gifts) || []).filter((g) => !g.withdrawn);
  $("gifts-none").hidden = gifts.length > 0;
  const points = member.wallet ? member.wallet.points.balance : 0;
  for (const g of gifts) {
    const tr = document.createElement("tr");
    const what = g.kind === "goods" ? `${g.product && g.product !== g.name ? g.product + " " : ""}×${g.qty}` : t("gift_coupon");
    const name = cell(tr, `${g.name} `);
    const sub = document.createElement("small");
    sub.textContent = `${what} · ${t("gift_left")} ${g.left_here} · ${t("gift_had")} ${g.had}/${g.per_member}`;
    name.appendChild(sub);
    cell(tr, `${g.points} ${t("points_unit")}`).className = "nowrap";
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = t("redeem");
    b.disabled = g.left_here === 0 || g.had >= g.per_member || points < g.points;
    b.addEventListener("click", () => redeemGift(g));
    cell(tr, "").appendChild(b);
    body.appendChild(tr);
  }
}

async function redeemGift(g) {
  if (!confirm(t("confirm_redeem").replace("{g}", g.name).replace("{p}", g.points))) return;
  const line = $("gift-error");
  const r = await api("POST", `/api/v1/members/${member.member_id}/gifts`, { gift: g.id }, keyFor("gift-" + g.id));
  line.className = r.ok ? "ok" : "error";
  if (!r.ok) { line.textContent = said(r.data); return; }
  keyDone("gift-" + g.id);
  line.textContent = `${t("redeemed")}：${g.name}，${t("points_left")} ${r.data.points.balance}`;
  await showMember(member);
}
