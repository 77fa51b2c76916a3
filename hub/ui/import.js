// 会员导入: the file checked first (every bad row listed with its line and column), then
// imported only when no row is bad. Uses app.js's helpers ($, api, said, table, lang, token).
"use strict";

const IMPORT_EN = {
  "会员导入": "Member import", "从旧系统或纸质卡迁入：资料、卡号、储值、积分、次卡": "from an old system or paper cards: profile, card, stored value, points, cards",
  "文件（CSV UTF-8 或 Excel .xlsx）": "File (CSV UTF-8 or Excel .xlsx)", "检查（不导入）": "Check (import nothing)", "导入": "Import",
  "列：手机号、姓名、开卡门店（必填），卡号、生日、性别、等级、入会日期、储值本金、赠送金额、积分、积分到期、卡项（count:名称:剩余次数:总次数:售价、timed:名称:剩余分钟:总分钟:售价 或 period:名称:开始:结束:售价，多张用 ; 分隔）。有错误的行时不会导入任何会员；同一文件重复导入不会重复。":
    "Columns: phone, name, home_store (required), card_no, birthday, gender, tier, join_date, principal, bonus, points, points_expire, cards (count:name:uses left:uses sold:price, timed:name:minutes left:minutes sold:price or period:name:from:to:price, several separated by ;). A file with a bad row imports nothing; importing a file again imports nothing twice.",
  "行": "rows", "可导入": "to import", "已导入过": "imported before", "错误": "bad", "已导入": "imported", "跳过": "skipped",
  "行号": "Line", "列": "Column", "问题": "Problem",
};
const IL = (zh) => (lang === "zh" ? zh : IMPORT_EN[zh] || zh);
function importLang() {
  document.querySelectorAll("#import [data-zh]").forEach((el) => { el.textContent = IL(el.dataset.zh); });
}
importLang();
$("lang").addEventListener("click", () => setTimeout(importLang));

async function sendImport(dryRun) {
  const file = $("import-file").files[0];
  if (!file) return;
  $("import-error").textContent = "";
  $("import-summary").textContent = "…";
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const url = `/api/v1/members/import?dry_run=${dryRun}&name=${encodeURIComponent(file.name)}`;
  const r = await fetch(url, { method: "POST", headers, body: file });
  let data = {};
  try { data = await r.json(); } catch (e) {}
  // A checked file imports on at headquarters: its progress is followed until it ends.
  while (r.status === 202 && data.progress && (data.state === "running")) {
    $("import-summary").textContent = `${IL("行")} ${data.rows} · ${IL("已导入")} ${data.imported ?? 0} · ${IL("跳过")} ${data.skipped ?? 0} …`;
    await new Promise((done) => setTimeout(done, 1000));
    const p = await fetch(data.progress, { headers });
    const now = await p.json().catch(() => ({}));
    data = Object.assign(now, { progress: data.progress });
    if (!p.ok) break;
  }
  if (data.state === "failed") $("import-error").textContent = data.error || "";
  const report = data.report || data;
  const counts = dryRun || data.report
    ? [["行", report.rows], ["可导入", report.good], ["已导入过", report.already_imported], ["错误", report.bad]]
    : [["行", data.rows], ["已导入", data.imported], ["跳过", data.skipped]];
  $("import-summary").textContent = counts.map(([k, v]) => `${IL(k)} ${v ?? 0}`).join(" · ");
  if (!r.ok) $("import-error").textContent = said(data);
  const bad = report.bad_rows || data.refused || [];
  const FIELDS = { phone: "手机号", name: "姓名", card_no: "卡号", birthday: "生日", gender: "性别", tier: "等级", home_store: "开卡门店", join_date: "入会日期", principal: "储值本金", bonus: "赠送金额", points: "积分", points_expire: "积分到期", cards: "卡项" };
  table("import-table", bad.map((b) => ({ line: b.line, field: lang === "zh" ? FIELDS[b.field] || b.field : b.field, message: b.message })),
    { line: IL("行号"), field: IL("列"), message: IL("问题") });
  $("import-run").disabled = !(dryRun && r.ok && report.bad === 0 && report.good > 0);
}

$("import-form").addEventListener("submit", (e) => { e.preventDefault(); sendImport(true); });
$("import-run").addEventListener("click", () => { $("import-run").disabled = true; sendImport(false); });
$("import-file").addEventListener("change", () => { $("import-run").disabled = true; });
