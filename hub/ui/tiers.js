// 会员等级: the tier table every store applies (one line per tier, lowest first), its history,
// and the review that moves members down (previewed before it is run). Uses app.js's helpers
// ($, api, said, table, markField, lang).
"use strict";

const TIERS_EN = {
  "会员等级": "Member tiers", "按什么评定": "Qualify by", "消费金额（元）": "Net spend (yuan)", "积分": "Points earned",
  "滚动天数": "Rolling days", "等级（每行：名称,起点,折扣%,积分倍数,可降级 是/否；从低到高，第一行起点 0）":
    "Tiers (one per line: name,threshold,percent off,points multiplier,may go down yes/no; lowest first, the first from 0)",
  "发布到所有门店": "Publish to every store", "尚未发布：门店按 node.toml 的等级折扣": "Not published: stores use their node.toml tier discounts",
  "生效中": "In force", "行格式不对": "line not understood", "等级评定": "Tier review", "预览评定": "Preview the review", "执行评定": "Run the review",
  "升级": "up", "降级": "down", "已检查": "checked", "评定日": "as of", "已发布": "Published",
  "门店收银时达标即升级（离线也可）；总部每天评定一次，只降可降级的等级。": "Members move up at the till when a sale takes them over a threshold (offline too); headquarters reviews once a day and moves members down only out of a tier that may go down.",
};
const TL = (zh) => (lang === "zh" ? zh : TIERS_EN[zh] || zh);
function tiersLang() {
  document.querySelectorAll("#tiers [data-zh]").forEach((el) => { el.textContent = TL(el.dataset.zh); });
}
tiersLang();
$("lang").addEventListener("click", () => setTimeout(tiersLang));

const YES = /^(是|y|yes|true|1)$/i;
// The basis of the table in force: what the review's figures are in.
let publishedBasis = "spend";

// The form's lines as the API's tiers; a line that does not parse is named.
function tierForm() {
  const lines = $("tiers-lines").value.split("\n").map((l) => l.trim()).filter(Boolean);
  const tiers = lines.map((line) => {
    const p = line.split(/[,，]/).map((x) => x.trim());
    if (p.length < 2 || p.length > 5 || !p[0] || !p[1]) throw { field: "tiers", message: TL("行格式不对"), detail: line };
    return { name: p[0], threshold: p[1], percent_off: p[2] || "0", points_multiplier: p[3] || "1", may_go_down: p[4] === undefined ? true : YES.test(p[4]) };
  });
  return { basis: $("tiers-basis").value, period_days: Number($("tiers-days").value), tiers };
}

const tierLine = (t) => `${t.name},${t.threshold},${t.percent_off},${t.points_multiplier},${t.may_go_down ? "是" : "否"}`;
const tierSummary = (table) => `${table.basis === "spend" ? TL("消费金额（元）") : TL("积分")} · ${table.period_days} ${lang === "zh" ? "天" : "days"} · ` +
  table.tiers.map((t) => `${t.name} ≥${t.threshold} ${t.percent_off}% ×${t.points_multiplier}${t.may_go_down ? "" : " 🔒"}`).join(" · ");

async function tiers() {
  const r = await api("/api/v1/tiers");
  if (!r.ok) return;
  const current = r.data.current;
  const at = (ms) => new Date(ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" });
  $("tiers-source").textContent = current
    ? `${TL("生效中")}：${at(current.published_at_ms)} · ${current.staff_name || current.staff}`
    : TL("尚未发布：门店按 node.toml 的等级折扣");
  if (current) {
    $("tiers-basis").value = current.table.basis;
    publishedBasis = current.table.basis;
    $("tiers-days").value = current.table.period_days;
    $("tiers-lines").value = current.table.tiers.map(tierLine).join("\n");
  }
  $("tiers-review-run").disabled = !current;
  $("tiers-review-preview").disabled = !current;
  table("tiers-history", r.data.history.map((p) => ({ at: at(p.published_at_ms), staff: p.staff_name || p.staff, summary: tierSummary(p.table) })),
    { at: "时间", staff: "操作人", summary: "内容" });
}

$("tiers-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("tiers-form");
  let body;
  try { body = tierForm(); } catch (bad) { markField(form, "tiers-error", bad); return; }
  const r = await api("/api/v1/tiers", false, "PUT", body, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(form, "tiers-error", r.data); return; }
  markField(form, "tiers-error", {});
  $("tiers-error").textContent = TL("已发布");
  await tiers();
});

async function review(dryRun) {
  $("tiers-review-summary").textContent = "…";
  const r = await api(`/api/v1/tiers/review?dry_run=${dryRun}`, false, "POST", undefined, { "X-Staff-Id": staffId() });
  if (!r.ok) { $("tiers-review-summary").textContent = said(r.data); return; }
  const d = r.data;
  $("tiers-review-summary").textContent = `${TL("评定日")} ${d.as_of} · ${TL("已检查")} ${d.checked} · ${TL("升级")} ${d.up} · ${TL("降级")} ${d.down}` +
    (dryRun ? ` · ${lang === "zh" ? "预览，未改动" : "preview, nothing changed"}` : "");
  // What each qualified with: yuan of spend (the API gives fen), or points.
  const spend = publishedBasis === "spend";
  const shown = (q) => {
    if (!spend) return String(q);
    const digits = String(Math.abs(q)).padStart(3, "0");
    return `${q < 0 ? "-" : ""}¥${digits.slice(0, -2)}.${digits.slice(-2)}`;
  };
  table("tiers-review-table", d.moves.map((m) => ({ name: m.name, phone_masked: m.phone_masked, from: m.from, to: m.to, qualifying: shown(m.qualifying) })),
    { name: "姓名", phone_masked: "手机", from: "原等级", to: "新等级", qualifying: spend ? "期内消费" : "期内积分" });
}
$("tiers-review-preview").addEventListener("click", () => review(true));
$("tiers-review-run").addEventListener("click", () => review(false));

window.tiers = tiers;
