// 总览: today's and this month's sales per store with a daily and an hourly chart (SVG drawn
// here, no chart library), and every store's sync: lag, clock, hold and fence, certificate.
"use strict";

// The axis' top: the next 1, 2, 2.5 or 5 × 10ⁿ at or above the largest value.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}
const axisYuan = (v) => (v >= 10000 ? `¥${+(v / 10000).toFixed(1)}${lang === "zh" ? "万" : "0k"}` : `¥${+v.toFixed(v < 10 ? 1 : 0)}`);

// A bar chart as SVG: `points` are [label, yuan]; a y axis in yuan with gridlines, a label
// under every `every`th bar, and each bar's label and value on hover (a tooltip).
function bars(id, points, every) {
  const W = 640, H = 200, left = 64, right = 6, top = 10, bottom = 26;
  const max = niceMax(Math.max(0, ...points.map((p) => p[1])));
  const plotW = W - left - right, plotH = H - top - bottom;
  const w = plotW / Math.max(points.length, 1);
  const y = (v) => top + plotH - (v / max) * plotH;
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = max * f;
    return `<line x1="${left}" x2="${W - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/>` +
      `<text class="y" x="${left - 6}" y="${(y(v) + 5).toFixed(1)}">${axisYuan(v)}</text>`;
  });
  const svg = points.map(([label, v], i) => {
    const x = left + i * w;
    const tip = `${label} · ¥${v.toFixed(2)}`;
    return `<rect x="${(x + 1).toFixed(1)}" y="${y(v).toFixed(1)}" width="${Math.max(w - 2, 1).toFixed(1)}" height="${(top + plotH - y(v)).toFixed(1)}" data-tip="${tip}"><title>${tip}</title></rect>` +
      (i % every === 0 ? `<text class="x" x="${(x + w / 2).toFixed(1)}" y="${H - 6}">${label}</text>` : "");
  });
  const box = $(id);
  box.innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img">${grid.join("")}${svg.join("")}</svg><div class="tip" hidden></div>`;
  const tipBox = box.querySelector(".tip");
  box.onmousemove = (e) => {
    const tip = e.target.dataset && e.target.dataset.tip;
    tipBox.hidden = !tip;
    if (!tip) return;
    const r = box.getBoundingClientRect();
    tipBox.textContent = tip;
    tipBox.style.left = `${e.clientX - r.left + 12}px`;
    tipBox.style.top = `${e.clientY - r.top - 28}px`;
  };
  box.onmouseleave = () => { tipBox.hidden = true; };
}

// A bar per day of the month so far: `rows` are the report's rows by day.
function chart(rows, from, to) {
  const days = [];
  for (let d = new Date(from + "T00:00:00Z"); day(d) <= to; d = new Date(d.getTime() + 86400000)) days.push(day(d));
  const net = Object.fromEntries(rows.map((r) => [r.day, parseFloat(r.net.amount)]));
  bars("chart", days.map((d) => [d.slice(5), net[d] || 0]), 5);
}

// A bar per hour of today.
function hourChart(rows) {
  const net = Object.fromEntries(rows.map((r) => [Number(r.hour), parseFloat(r.net.amount)]));
  bars("chart-hours", Array.from({ length: 24 }, (_, h) => [String(h).padStart(2, "0"), net[h] || 0]), 3);
}

async function overview() {
  const [d, m, byDay, stores, byHour] = await Promise.all([
    api(`/api/v1/reports/sales?from=${today()}&to=${today()}&by=store`),
    api(`/api/v1/reports/sales?from=${monthStart()}&to=${today()}&by=store`),
    api(`/api/v1/reports/sales?from=${monthStart()}&to=${today()}&by=day`),
    api("/api/v1/stores"),
    api(`/api/v1/reports/sales?from=${today()}&to=${today()}&by=hour`),
  ]);
  if (!d.ok) return;
  const sum = (rows) => rows.reduce((a, r) => [a[0] + parseFloat(r.net_after_returns.amount), a[1] + r.sales], [0, 0]);
  const [dn, dc] = sum(d.data.rows);
  const [mn, mc] = sum(m.data.rows || []);
  $("today-net").textContent = "¥" + dn.toFixed(2);
  $("today-count").textContent = `${dc} ${t("sales")}`;
  $("month-net").textContent = "¥" + mn.toFixed(2);
  $("month-count").textContent = `${mc} ${t("sales")}`;
  chart(byDay.data.rows || [], monthStart(), today());
  hourChart((byHour.ok && byHour.data.rows) || []);
  const body = $("by-store").querySelector("tbody");
  body.innerHTML = "";
  const todayBy = Object.fromEntries(d.data.rows.map((r) => [r.store, r]));
  for (const r of m.data.rows || []) {
    const tr = document.createElement("tr");
    cell(tr, r.store);
    cell(tr, yuan(todayBy[r.store] && todayBy[r.store].net_after_returns));
    cell(tr, yuan(r.net_after_returns));
    body.appendChild(tr);
  }
  const sb = $("stores").querySelector("tbody");
  sb.innerHTML = "";
  for (const s of (stores.data.stores || [])) {
    const tr = document.createElement("tr");
    cell(tr, s.store_id);
    const link = cell(tr, t(s.connected ? "online" : "offline"));
    link.className = s.connected ? "online" : "offline";
    // A PC clock off by over a minute: the store goes by headquarters' time, but say so.
    if (s.clock_wrong) {
      const minutes = Math.round(s.clock_off_ms / 60000);
      link.textContent += ` · ${t("clock_off")} ${minutes > 0 ? "+" : ""}${minutes} ${t("minutes")}`;
      link.className = "offline";
    }
    cell(tr, s.entries_behind);
    cell(tr, s.seconds_behind);
    holdCell(tr, s);
    revokeCell(tr, s);
    sb.appendChild(tr);
  }
}


// 证书: until when the store's certificate is good; 吊销证书: its certificates issued until now
// are refused from the next seconds on (a stolen or replaced PC); its balances are untouched
// (that is a hold).
function revokeCell(tr, s) {
  const td = cell(tr, "");
  // 证书: until when the certificate it last connected with is good (within 30 days: orange).
  if (s.certificate_until_ms) {
    td.textContent = `${t("cert_until")} ${day(new Date(s.certificate_until_ms))} `;
    if (s.certificate_until_ms - Date.now() < 30 * 86400000) td.className = "offline";
  }
  const b = document.createElement("button");
  b.textContent = t("revoke");
  b.addEventListener("click", async () => {
    const reason = prompt(t("revoke_risk").replace("{store}", s.store_id), "");
    if (reason === null) return;
    const r = await api(`/api/v1/stores/${s.store_id}/revoke`, false, "POST", { reason }, { "X-Staff-Id": staffId() });
    alert(r.ok ? t("revoked") : said(r.data));
    overview();
  });
  td.appendChild(b);
}

// 挂起 / 冻结: a quiet store's hold, its fence, and what a hold risks, said before it is made.
function holdCell(tr, s) {
  const td = cell(tr, "");
  const fence = s.fence || {};
  if (fence.fenced) {
    td.className = "offline";
    td.textContent = `${t("fenced")} · ${t("fenced_at")} ${fence.fenced.at_seq}` +
      (s.entries_after_fence ? ` · ${t("after_fence")} ${s.entries_after_fence}` : "");
    td.title = t("fenced_hint");
    return;
  }
  if (fence.on_hold) {
    td.textContent = `${t("on_hold_until")} ${when(fence.on_hold.until_ms)} `;
    const b = document.createElement("button");
    b.textContent = t("void_hold");
    b.addEventListener("click", async () => {
      const r = await api(`/api/v1/stores/${s.store_id}/hold`, false, "DELETE", undefined, { "X-Staff-Id": staffId() });
      if (!r.ok) alert(said(r.data));
      overview();
    });
    td.appendChild(b);
    return;
  }
  if (s.connected || !s.earliest_fence_ms) return;
  const b = document.createElement("button");
  b.textContent = t("hold");
  b.addEventListener("click", async () => {
    const earliest = s.earliest_fence_ms;
    const minHours = Math.max(1, Math.ceil((earliest - Date.now()) / 3600000));
    const text = t("hold_risk").replace("{store}", s.store_id).replace("{at}", when(earliest));
    const hours = prompt(`${text}\n\n${t("hold_hours")}`, String(minHours));
    if (hours === null) return;
    const reason = prompt(t("hold_reason"), "");
    if (reason === null) return;
    const r = await api(`/api/v1/stores/${s.store_id}/hold`, false, "POST",
      { seconds: Math.round(Number(hours) * 3600), reason }, { "X-Staff-Id": staffId() });
    if (!r.ok) alert(said(r.data));
    overview();
  });
  td.appendChild(b);
}
