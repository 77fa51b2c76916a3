// 员工: the staff directory (who works where, in which role, whether still employed and whether
// they have a login), a member of staff added or changed, their password or PIN set or removed
// (kept as an argon2 hash every store checks offline); and 提成规则, the commission rules by
// category, product and card sold, published from a day on.
"use strict";

async function staffScreen() {
  await Promise.all([staffList(), commissionRules()]);
}
window.staffScreen = staffScreen;

async function staffList() {
  const store = $("staff-store").value.trim();
  const r = await api("/api/v1/staff" + (store ? "?store=" + encodeURIComponent(store) : ""));
  if (!r.ok) { $("staff-error").textContent = said(r.data); return; }
  const body = $("staff-table").querySelector("tbody");
  body.innerHTML = "";
  for (const s of r.data.staff) {
    const tr = document.createElement("tr");
    [s.id, s.name, s.store || t("hq_staff"), t("role_" + s.role), t(s.active ? "yes" : "no"), t(s.login ? "login_yes" : "login_no")].forEach((x) => cell(tr, x));
    const td = cell(tr, "");
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = t("edit");
    edit.addEventListener("click", () => {
      $("staff-id").value = s.id; $("staff-name").value = s.name; $("staff-at").value = s.store || "";
      $("staff-role").value = s.role; $("staff-active").checked = s.active;
      $("staff-name").focus();
    });
    const secret = document.createElement("button");
    secret.type = "button";
    secret.textContent = t("set_password");
    secret.addEventListener("click", () => { $("secret-id").value = s.id; $("secret-password").focus(); });
    td.append(edit, " ", secret);
    body.appendChild(tr);
  }
}
$("staff-filter").addEventListener("submit", (e) => { e.preventDefault(); staffList(); });

$("staff-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = $("staff-form");
  const store = $("staff-at").value.trim();
  const one = { id: $("staff-id").value.trim(), name: $("staff-name").value.trim(), store: store || null, role: $("staff-role").value, active: $("staff-active").checked };
  const r = await api("/api/v1/staff", false, "POST", { staff: [one] }, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(f, "staff-error", r.data); return; }
  markField(f, "staff-error", {});
  okLine("staff-error", t("saved"));
  await staffList();
});

$("staff-secret").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = $("staff-secret");
  const password = $("secret-password").value;
  const id = encodeURIComponent($("secret-id").value.trim());
  const r = await api(`/api/v1/staff/${id}/password`, false, "PUT", { password: password || null }, { "X-Staff-Id": staffId() });
  $("secret-password").value = "";
  if (!r.ok) { markField(f, "secret-error", r.data); return; }
  markField(f, "secret-error", {});
  okLine("secret-error", t(password ? "password_set" : "password_removed"));
  await staffList();
});

// A rate as typed: "5%" a percentage of the line, "2.00" yuan per unit.
const rateText = (r) => (r.percent !== undefined ? `${r.percent}%` : `¥${r.fixed}`);
function rateOf(text, field, line) {
  const v = text.replace(/[¥\s]/g, "");
  if (/^\d+(\.\d+)?%$/.test(v)) return { percent: v.slice(0, -1) };
  if (/^\d+(\.\d{1,2})?$/.test(v)) return { fixed: v };
  throw { field, message: t("line_bad"), detail: line };
}
function rateLines(id, field) {
  const out = {};
  for (const line of $(id).value.split("\n").map((s) => s.trim()).filter(Boolean)) {
    const at = line.lastIndexOf("=");
    if (at < 1) throw { field, message: t("line_bad"), detail: line };
    out[line.slice(0, at).trim()] = rateOf(line.slice(at + 1), field, line);
  }
  return out;
}
const rateSummary = (r) => [
  ...Object.entries(r.categories).map(([k, v]) => `${k} ${rateText(v)}`),
  ...Object.entries(r.skus).map(([k, v]) => `${k} ${rateText(v)}`),
  ...Object.entries(r.cards).map(([k, v]) => `${k} ${rateText(v)}`),
  ...(r.card_default ? [`* ${rateText(r.card_default)}`] : []),
].join(" · ");

async function commissionRules() {
  if (!$("commission-from").value) $("commission-from").value = today();
  const r = await api("/api/v1/commission-rules");
  if (!r.ok) { $("commission-error").textContent = said(r.data); return; }
  const sets = r.data.rules;
  const now = sets.filter((s) => s.from <= today()).pop();
  $("commission-now").textContent = now ? `${t("commission_in_force").replace("{from}", now.from)}：${rateSummary(now) || "—"}` : t("commission_none");
  const body = $("commission-history").querySelector("tbody");
  body.innerHTML = "";
  for (const s of sets.slice().reverse()) {
    const tr = document.createElement("tr");
    [s.from, when(s.published_at_ms), rateSummary(s)].forEach((x) => cell(tr, x));
    body.appendChild(tr);
  }
  if (now) {
    const lines = (m) => Object.entries(m).map(([k, v]) => `${k}=${v.percent !== undefined ? v.percent + "%" : v.fixed}`).join("\n");
    $("commission-categories").value = lines(now.categories);
    $("commission-skus").value = lines(now.skus);
    $("commission-cards").value = lines(now.cards);
    $("commission-card-default").value = now.card_default ? (now.card_default.percent !== undefined ? now.card_default.percent + "%" : now.card_default.fixed) : "";
  }
}

$("commission-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = $("commission-form");
  let body;
  try {
    body = {
      from: $("commission-from").value,
      categories: rateLines("commission-categories", "categories"),
      skus: rateLines("commission-skus", "skus"),
      cards: rateLines("commission-cards", "cards"),
    };
    const d = $("commission-card-default").value.trim();
    if (d) body.card_default = rateOf(d, "card_default", d);
  } catch (bad) { markField(f, "commission-error", bad); return; }
  const r = await api("/api/v1/commission-rules", false, "PUT", body, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(f, "commission-error", r.data); return; }
  markField(f, "commission-error", {});
  okLine("commission-error", t("published"));
  await commissionRules();
});
