// 会员规则: shown as they are in force, edited as lines of text, published as one change that
// every store applies once it hears of it. A line or field that does not pass is marked where
// it is, and nothing is published.
"use strict";

const splitLines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const parts = (line, sep) => line.split(sep).map((s) => s.trim());
function ruleForm() {
  const f = (id) => $(id).value.trim();
  const bad = (field, line) => { throw { field, message: t("line_bad"), detail: line }; };
  const map = (id, field) => {
    const out = {};
    for (const line of splitLines($(id).value)) {
      const p = parts(line, /[=＝]/);
      if (p.length !== 2 || !p[0] || !p[1] || p[0] in out) bad(field, line);
      out[p[0]] = p[1];
    }
    return out;
  };
  return {
    points_per_yuan: f("rules-points"),
    points_per_yuan_by_category: map("rules-categories", "points_per_yuan_by_category"),
    points_multipliers: splitLines($("rules-multipliers").value).map((line) => {
      const p = parts(line, /[,，]/);
      if (p.length !== 3) bad("points_multipliers", line);
      const day = /^\d+$/.test(p[1]) ? { weekday: null, day_of_month: Number(p[1]) } : { weekday: p[1], day_of_month: null };
      return { name: p[0], ...day, factor: p[2] };
    }),
    top_up_rules: splitLines($("rules-topups").value).map((line) => {
      const p = parts(line, /[,，]/);
      if (p.length !== 3) bad("top_up_rules", line);
      return { id: p[0], pay_at_least: p[1], bonus: p[2] };
    }),
    tier_percent_off: map("rules-tiers", "tier_percent_off"),
    offline_overdraft_per_member: f("rules-od-member"),
    offline_overdraft_per_store: f("rules-od-store"),
    offline_overdraft_needs_manager: $("rules-od-manager").checked,
  };
}

function showRules(r) {
  $("rules-points").value = r.points_per_yuan;
  $("rules-categories").value = Object.entries(r.points_per_yuan_by_category).map(([k, v]) => `${k}=${v}`).join("\n");
  $("rules-multipliers").value = r.points_multipliers.map((m) => `${m.name},${m.weekday || m.day_of_month},${m.factor}`).join("\n");
  $("rules-topups").value = r.top_up_rules.map((x) => `${x.id},${x.pay_at_least},${x.bonus}`).join("\n");
  $("rules-tiers").value = Object.entries(r.tier_percent_off).map(([k, v]) => `${k}=${v}`).join("\n");
  $("rules-od-member").value = r.offline_overdraft_per_member;
  $("rules-od-store").value = r.offline_overdraft_per_store;
  $("rules-od-manager").checked = !!r.offline_overdraft_needs_manager;
}

const ruleSummary = (r) => `每元 ${r.points_per_yuan} 分 · ${Object.keys(r.points_per_yuan_by_category).length} 个类别 · ` +
  `${r.points_multipliers.length} 个倍数日 · 充值：${r.top_up_rules.map((x) => x.id).join("、") || "无"} · ` +
  `等级：${Object.entries(r.tier_percent_off).map(([k, v]) => `${k} ${v}%`).join("、") || "无"} · ` +
  `透支 ¥${r.offline_overdraft_per_member} / ¥${r.offline_overdraft_per_store}` +
  (r.offline_overdraft_needs_manager ? "（须店长确认）" : "");

async function rules() {
  const r = await api("/api/v1/member-rules");
  if (!r.ok) return;
  const current = r.data.current;
  $("rules-source").textContent = current
    ? `${t("in_force")}：${new Date(current.published_at_ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" })} · ${current.staff_name || current.staff}`
    : t("not_published");
  if (current) showRules(current.rules);
  const body = $("rules-history").querySelector("tbody");
  body.innerHTML = "";
  for (const p of r.data.history) {
    const row = document.createElement("tr");
    cell(row, new Date(p.published_at_ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" }));
    cell(row, p.staff_name ? `${p.staff_name}（${p.staff}）` : p.staff);
    cell(row, ruleSummary(p.rules));
    body.appendChild(row);
  }
}

$("rules").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("rules");
  let body;
  try { body = ruleForm(); } catch (bad) { markField(form, "rules-error", bad); return; }
  const r = await api("/api/v1/member-rules", false, "PUT", body, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(form, "rules-error", r.data); return; }
  markField(form, "rules-error", {});
  okLine("rules-error", t("published"));
  await rules();
});
