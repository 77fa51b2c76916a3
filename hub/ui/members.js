// 会员查询: a member found by name, phone tail or card number (phones masked); their card
// reported lost, their personal data exported or erased (PIPL).
"use strict";

// 会员查询: by name, phone tail or card number, phones masked.
$("msearch").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("/api/v1/members/search?q=" + encodeURIComponent($("msearch-q").value.trim()));
  $("msearch-error").textContent = r.ok ? (r.data.members.length ? "" : t("none_found")) : said(r.data);
  const members = (r.ok && r.data.members) || [];
  // Name and phone first, the actions right after them; the member's id is the name's tooltip.
  const rows = members.map((m) => ({
    name: m.name, phone_masked: m.phone_masked, tier: m.tier, card_no: m.card_no, home_store: m.home_store,
    card_status: m.card_no ? t("card_" + m.card_status) : "",
    // 会员名录: the stores holding the member whole; every other store holds their listing.
    whole_at: (m.whole_at || []).join(", ") || t("listing_everywhere"),
  }));
  table("msearch-table", rows, { name: "姓名", phone_masked: "手机", home_store: "开卡门店", tier: "等级", card_no: "卡号", card_status: "卡状态", whole_at: "完整资料门店" });
  const wholeHead = $("msearch-table").querySelector("thead th:last-child");
  if (wholeHead) wholeHead.title = t("whole_at_title");
  [...$("msearch-table").querySelector("tbody").rows].forEach((tr, i) => { tr.cells[0].title = members[i].member_id; });
  // 个人信息查阅复制: the member's own data as a file, on their request.
  const head = $("msearch-table").querySelector("thead tr");
  if (head) head.appendChild(document.createElement("th"));
  [...$("msearch-table").querySelector("tbody").rows].forEach((tr, i) => {
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = t("export_member");
    button.title = t("export_title");
    button.addEventListener("click", () => exportMember(members[i].member_id));
    td.appendChild(button);
    // 删除个人信息: on the member's request, once nothing is owed either way.
    const erase = document.createElement("button");
    erase.type = "button";
    erase.className = "danger";
    erase.textContent = t("erase_member");
    erase.title = t("erase_title");
    erase.addEventListener("click", () => eraseMember(members[i].member_id, tr));
    td.appendChild(erase);
    // 挂失: the member called the service line.
    if (members[i].card_no && members[i].card_status === "active") {
      const lost = document.createElement("button");
      lost.type = "button";
      lost.textContent = t("report_lost");
      lost.title = t("lost_title");
      lost.addEventListener("click", () => reportLost(members[i].member_id, lost));
      td.appendChild(lost);
    }
    tr.appendChild(td);
  });
});

async function reportLost(id, button) {
  if (!confirm(t("lost_confirm"))) return;
  const r = await api("/api/v1/members/" + id + "/card/lost", false, "POST");
  $("msearch-error").textContent = r.ok ? t("reported_lost") : said(r.data);
  if (r.ok) button.remove();
}

async function eraseMember(id, tr) {
  if (!confirm(t("erase_confirm"))) return;
  const r = await api("/api/v1/members/" + id + "/erase", false, "POST");
  $("msearch-error").textContent = r.ok ? t("erased") : said(r.data);
  if (r.ok) tr.remove();
}

async function exportMember(id) {
  const r = await api("/api/v1/members/" + id + "/export", true);
  if (!r.ok) {
    $("msearch-error").textContent = said(await r.json().catch(() => ({})));
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await r.blob());
  link.download = `member-${id}.json`;
  link.click();
  URL.revokeObjectURL(link.href);
}
