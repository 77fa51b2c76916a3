// 报表: every sales report with its filters, and the member, liability, settlement,
// commission and audit reports, shown here and exported as CSV or Excel.
"use strict";

function reportQuery(format) {
  let q = `from=${$("report-from").value}&to=${$("report-to").value}&by=${$("report-by").value}`;
  if ($("report-store").value.trim()) q += "&store=" + encodeURIComponent($("report-store").value.trim());
  if (format) q += "&format=" + format;
  return "/api/v1/reports/sales?" + q;
}

$("report").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api(reportQuery());
  $("report-error").textContent = r.ok ? "" : said(r.data);
  const head = $("report-table").querySelector("thead");
  const body = $("report-table").querySelector("tbody");
  head.innerHTML = "";
  body.innerHTML = "";
  const rows = (r.ok && r.data.rows) || [];
  if (!rows.length) return;
  const keys = Object.keys(rows[0]).filter((k) => k !== "by");
  const by = r.data.by;
  keys.sort((a, b) => (a === by ? -1 : b === by ? 1 : 0));
  const tr = document.createElement("tr");
  keys.forEach((k) => {
    const th = document.createElement("th");
    th.textContent = lang === "zh" ? COLUMNS[k] || k : k;
    tr.appendChild(th);
  });
  head.appendChild(tr);
  for (const row of rows) {
    const tr = document.createElement("tr");
    keys.forEach((k) => cell(tr, row[k] && row[k].amount !== undefined ? row[k].amount : row[k]));
    body.appendChild(tr);
  }
});

// The other reports: where each one's rows are, and its query.
const MORE = {
  members: { rows: "members", path: (p) => `/api/v1/reports/members?${p}` },
  liabilities: { rows: "by_store", path: () => "/api/v1/liabilities" },
  settlement: { rows: "owed", path: (p) => `/api/v1/settlement?${p}` },
  commissions: { rows: "staff", path: () => `/api/v1/commissions?month=${$("report-from").value.slice(0, 7)}` },
  audit: { rows: "actions", path: (p) => `/api/v1/audit?${p}` },
  shifts: { rows: "shifts", path: (p) => `/api/v1/shifts?${p}` },
};
const MORE_COLUMNS = {
  member_id: "会员编号", phone_masked: "手机号", name: "姓名", days: "消费天数", store_id: "门店",
  kind: "类型", issued: "发放", redeemed: "已用", held: "本店持有", payer: "应付门店",
  payee: "应收门店", principal: "本金", bonus: "赠送", due: "应结算", staff_id: "员工",
  commission: "提成", entries: "笔数", at: "时间", action: "操作", detail: "内容", key: "请求编号",
  business_date: "营业日", closed_at: "交班时间", opened_at: "开班时间", sales: "销售笔数", sales_amount: "销售金额",
  returns: "退货笔数", returned: "退货金额", top_ups: "充值", cards_sold: "售卡", refunded_cash: "退储值现金",
  cash_expected: "应有现金", counted: "实点现金", difference: "差额",
};

function moreQuery(format) {
  const m = MORE[$("more-kind").value];
  const path = m.path(`from=${$("report-from").value}&to=${$("report-to").value}`);
  return format ? path + (path.includes("?") ? "&" : "?") + "format=" + format : path;
}

function table(id, rows, names) {
  const head = $(id).querySelector("thead");
  const body = $(id).querySelector("tbody");
  head.innerHTML = "";
  body.innerHTML = "";
  if (!rows.length) return;
  const keys = Object.keys(rows[0]);
  const tr = document.createElement("tr");
  keys.forEach((k) => {
    const th = document.createElement("th");
    th.textContent = lang === "zh" ? names[k] || COLUMNS[k] || k : k;
    tr.appendChild(th);
  });
  head.appendChild(tr);
  for (const row of rows) {
    const tr = document.createElement("tr");
    keys.forEach((k) => {
      const v = row[k];
      cell(tr, v && typeof v === "object" && v.amount !== undefined ? v.amount : v === null ? "" : v);
    });
    body.appendChild(tr);
  }
}

$("more").addEventListener("submit", async (e) => {
  e.preventDefault();
  const kind = $("more-kind").value;
  const r = await api(moreQuery());
  $("more-error").textContent = r.ok ? "" : said(r.data);
  const d = r.data;
  $("more-summary").textContent = !r.ok ? "" : kind === "members"
    ? `新会员 ${d.joined} · 活跃 ${d.active} · 回头客 ${d.returning} · 沉睡 ${d.dormant} · 人均消费 ${yuan(d.spend_per_active_member)}`
    : kind === "liabilities"
      ? `储值 ${yuan(d.stored_value && d.stored_value.total)}（本金 ${yuan(d.stored_value && d.stored_value.principal)}）· 积分 ${d.points}` +
        ` · 应收：离线透支 ${yuan(d.receivables_total)} · 冻结门店重复消费 ${yuan(d.fence_receivables_total)}`
      : "";
  table("more-table", (r.ok && d[MORE[kind].rows]) || [], MORE_COLUMNS);
});

async function download(format, query) {
  const r = await api(query || reportQuery(format), true);
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = `report.${format}`;
  a.click();
}
$("export-csv").addEventListener("click", () => download("csv"));
$("export-xlsx").addEventListener("click", () => download("xlsx"));
$("more-csv").addEventListener("click", () => download("csv", moreQuery("csv")));
$("more-xlsx").addEventListener("click", () => download("xlsx", moreQuery("xlsx")));
