// 快速收银 and 充值: a sale of one amount (cash or stored value), a top-up under the chain's
// offers, and the receipt links every paid sale offers.
"use strict";

// A changed sale is a new sale: a new key.
["sale-amount", "sale-cash", "sale-stored"].forEach((id) => $(id).addEventListener("input", () => { saleKey = null; }));
$("sale").addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = $("sale-submit");
  if (button.disabled) return;
  $("sale-error").textContent = "";
  const body = { amount: { amount: $("sale-amount").value.trim() } };
  if (member) body.member_id = member.member_id;
  if ($("sale-stored").checked) {
    if (!member) { $("sale-error").textContent = t("need_member"); return; }
    body.pay_with = "stored_value";
    if ($("sale-password").value) body.password = $("sale-password").value;
  } else if ($("sale-cash").value.trim()) {
    body.cash_tendered = { amount: $("sale-cash").value.trim() };
  }
  saleKey = saleKey || newKey();
  button.disabled = true;
  const r = await api("POST", "/api/v1/checkouts/quick", body, saleKey);
  button.disabled = false;
  if (!r.ok) {
    $("sale-error").textContent = said(r.data);
    // The member's payment password is asked for, or was wrong: ask the member to type it.
    if (r.data.code === "password_required" || r.data.code === "password_wrong") {
      $("sale-password-row").hidden = false;
      $("sale-password").value = "";
      $("sale-password").focus();
      saleKey = null;
    }
    return;
  }
  $("sale-password-row").hidden = true;
  $("sale-password").value = "";
  const cash = (r.data.tenders || []).find((x) => x.kind === "cash");
  $("paid").hidden = false;
  $("paid-amount").textContent = yuan(r.data.amount);
  $("paid-change").textContent = cash ? yuan(cash.change) : "¥0.00";
  $("paid").querySelectorAll("a.receipt").forEach((a) => { a.dataset.sale = r.data.sale_id; });
  $("sale-amount").value = "";
  $("sale-cash").value = "";
  saleKey = null;
  if (member) showMember(member);
  refreshLink();
  $("sale-amount").focus();
});

// The receipt page (80 mm, or 58 mm) needs the session too: fetch it and open it to print.
document.querySelectorAll("a.receipt").forEach((a) => a.addEventListener("click", async (e) => {
  e.preventDefault();
  const paper = e.target.dataset.paper || "80";
  const r = await api("GET", `/api/v1/sales/${e.target.dataset.sale}/receipt?paper=${paper}&format=html`);
  const url = URL.createObjectURL(new Blob([r.data.text || ""], { type: "text/html" }));
  window.open(url, "_blank");
}));

$("topup-amount").addEventListener("input", () => { topupKey = null; pickRule(); });
$("topup-rule").addEventListener("change", () => { topupKey = null; });
$("topup").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("topup");
  $("topup-error").textContent = "";
  if (!member) { $("topup-error").textContent = t("need_member"); return; }
  const body = { amount: { amount: $("topup-amount").value.trim() } };
  if ($("topup-rule").value) body.rule = $("topup-rule").value;
  topupKey = topupKey || newKey();
  const r = await api("POST", `/api/v1/members/${member.member_id}/top-ups`, body, topupKey);
  if (!r.ok) { showError(form, "topup-error", r.data); return; }
  clearErrors(form);
  topupKey = null;
  $("topup-amount").value = "";
  $("topup-rule").value = "";
  $("topup-done").textContent = `${t("topped_up")} ${yuan(r.data.stored_value.total)}`;
  showMember(member);
});

