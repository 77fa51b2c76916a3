// 营销: coupon templates, segments (with a live count), campaigns and their runs, and the
// outbox of messages to members. Uses app.js's helpers ($, api, cell, said, markField, when,
// staffId).
"use strict";

// English for the screen's Chinese (the Chinese is the key: elements carry it in data-zh).
const EN = {"营销": "Marketing", "券模板 · 人群 · 营销活动 · 消息": "coupon templates · segments · campaigns · messages", "券模板": "Coupon template", "编号": "ID", "名称": "Name", "类型": "Kind", "满减": "Amount off", "折扣券": "Percent off", "代金券": "Voucher", "体验券": "Free item", "门槛 (元)": "Spend at least (yuan)", "减 / 面值 (元)": "Off / value (yuan)", "折扣 %": "Percent off", "最多减 (元)": "At most off (yuan)", "体验商品编码": "Free item SKU", "有效天数": "Good for days", "适用商品编码（逗号分隔，空为全部）": "SKUs it applies to (comma-separated, empty for all)", "适用类别（逗号分隔）": "Categories it applies to (comma-separated)", "发行量": "Quota", "每人限领": "Per member", "可与会员折扣同享": "Stacks with member discounts", "保存并发布": "Save and publish", "人群": "Segment", "沉睡：窗口内至少到店次数": "Dormant: visits at least, in the window", "沉睡：窗口天数": "Dormant: window in days", "沉睡：最近未到店天数": "Dormant: no visit in the last days", "生日在未来几天内": "Birthday within days", "最近几天内入会": "Joined within days", "等级（逗号分隔）": "Tiers (comma-separated)", "标签（逗号分隔）": "Tags (comma-separated)", "所属门店（逗号分隔）": "Home stores (comma-separated)", "仅同意营销的会员": "Only members who agreed to marketing", "预估人数": "Count", "保存": "Save", "营销活动": "Campaign", "执行": "Runs", "一次": "Once", "每天": "Daily", "消息（{name} 姓名 · {coupon} 券名 · {valid_to} 到期日）": "Message ({name} name · {coupon} coupon · {valid_to} last day)", "营销活动与发券": "Campaigns and their coupons", "活动": "Campaign", "已发券": "Issued", "最近一次": "Last run", "活动效果": "Campaign report", "模板": "Template", "优惠": "Offer", "有效期": "Good for", "适用": "Applies to", "已发 / 发行量": "Issued / quota", "消息": "Messages", "消息模板": "Message texts", "时间": "When", "门店": "Store", "会员": "Member", "状态": "State", "次数": "Tries", "说明": "Note", "待发送": "pending", "已发送": "sent", "失败": "failed", "未发送": "not sent", "储值变动": "Stored value", "积分变动": "Points", "营销券": "Campaign coupon", "券即将过期": "Coupon expiring", "生日祝福": "Birthday", "券到账": "Coupon received", "（营销）": " (marketing)", "已保存": "Saved", "报表": "Report", "效果": "Report", " · 可同享": " · stacks", "全部商品": "all goods", "不限": "no limit", "未执行": "not run yet", "（营销）": " (marketing)", "导入名单（批量打标签）": "Import a list (tag members)", "标签": "Tag", "手机号（每行一个，最多 10000 个）": "Phones (one a line, at most 10,000)", "打标签": "Tag them", "每人张数": "Coupons to each member", "张/人": " each"};
const L = (zh) => (lang === "zh" ? zh : EN[zh] || zh);
let shown = false;
function marketingLang() {
  document.querySelectorAll("#marketing [data-zh]").forEach((el) => { el.textContent = L(el.dataset.zh); });
  if (shown) marketing();
}

const csv = (text) => (text || "").split(/[,，]/).map((s) => s.trim()).filter(Boolean);
const num = (v) => (v === "" || v === undefined ? undefined : Number(v));
const STATES = { pending: "待发送", sent: "已发送", failed: "失败", suppressed: "未发送" };
const KINDS = { stored_value: "储值变动", points: "积分变动", coupon: "营销券", coupon_expiring: "券即将过期", birthday: "生日祝福" };
const TEXTS = { stored_value: "储值变动", points: "积分变动", coupon: "券到账", coupon_expiring: "券即将过期", birthday: "生日祝福" };

function offerText(o) {
  const zh = lang === "zh";
  switch (o.kind) {
    case "amount_off": return zh ? `满${o.threshold.amount}减${o.off.amount}` : `${o.off.amount} off ${o.threshold.amount}`;
    case "percent_off": return `${o.percent}% ` + (zh ? "折扣" : "off") + (o.cap ? (zh ? `，最多减${o.cap.amount}` : `, at most ${o.cap.amount}`) : "");
    case "voucher": return L("代金券") + ` ${o.value.amount}`;
    case "experience": return L("体验券") + ` ${o.sku}`;
    default: return JSON.stringify(o);
  }
}

function templateBody(form) {
  const f = Object.fromEntries(new FormData(form));
  const money = (v) => (v ? { amount: v } : undefined);
  const offer = {
    amount_off: { kind: "amount_off", threshold: money(f.threshold || "0"), off: money(f.off || "0") },
    percent_off: { kind: "percent_off", percent: f.percent || "0", threshold: money(f.threshold), cap: money(f.cap) },
    voucher: { kind: "voucher", value: money(f.off || "0"), threshold: money(f.threshold) },
    experience: { kind: "experience", sku: f.sku },
  }[f.kind];
  return {
    id: f.id.trim(), name: f.name.trim(), offer,
    validity: { days: { days: Number(f.days) } },
    scope: { skus: csv(f.skus), categories: csv(f.categories) },
    quota: num(f.quota), per_member: Number(f.per_member), stacks: form.stacks.checked,
  };
}

function segmentBody(form) {
  const f = Object.fromEntries(new FormData(form));
  const conditions = [];
  if (f.dormant_visits || f.dormant_window || f.dormant_quiet) {
    conditions.push({ dormant: { visits: Number(f.dormant_visits || 1), window_days: Number(f.dormant_window || 180), quiet_days: Number(f.dormant_quiet || 60) } });
  }
  if (f.birthday !== "") conditions.push({ birthday: { within_days: Number(f.birthday) } });
  if (f.joined !== "") conditions.push({ joined: { within_days: Number(f.joined) } });
  if (csv(f.tiers).length) conditions.push({ tier: { any: csv(f.tiers) } });
  if (csv(f.tags).length) conditions.push({ tags: { any: csv(f.tags) } });
  if (csv(f.home_stores).length) conditions.push({ home_store: { any: csv(f.home_stores) } });
  if (form.consent.checked) conditions.push("consent");
  return { id: f.id.trim(), name: f.name.trim(), conditions };
}

async function put(what, form, body, line) {
  const r = await api(`/api/v1/marketing/${what}`, false, "PUT", body, { "X-Staff-Id": staffId() });
  if (!r.ok) { markField(form, line, r.data); return; }
  markField(form, line, {});
  $(line).textContent = L("已保存");
  await marketing();
}

$("mk-template").addEventListener("submit", (e) => {
  e.preventDefault();
  put("templates", e.target, templateBody(e.target), "mk-template-error");
});
$("mk-segment").addEventListener("submit", (e) => {
  e.preventDefault();
  put("segments", e.target, segmentBody(e.target), "mk-segment-error");
});
$("mk-campaign").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = Object.fromEntries(new FormData(e.target));
  put("campaigns", e.target, { id: f.id.trim(), name: f.name.trim(), template: f.template, segment: f.segment, schedule: f.schedule, message: f.message }, "mk-campaign-error");
});
// 导入名单: a list of phones given a tag, for a segment on that tag.
$("mk-tag").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const phones = form.phones.value.split(/[\s,，;；]+/).filter((p) => p);
  const body = { tag: form.tag.value.trim(), phones };
  $("mk-tag-result").textContent = "";
  const r = await api("/api/v1/members/tags", false, "POST", body, { "X-Staff-Id": staffId() });
  if (!r.ok) { $("mk-tag-error").textContent = said(r.data); return; }
  $("mk-tag-error").textContent = "";
  $("mk-tag-result").textContent = lang === "zh"
    ? `${r.data.members} 位会员有标签「${r.data.tag}」`
    : `${r.data.members} members tagged "${r.data.tag}"`;
});
$("mk-count").addEventListener("click", async () => {
  const form = $("mk-segment");
  const body = segmentBody(form);
  body.id = body.id || "preview";
  body.name = body.name || "preview";
  const r = await api("/api/v1/marketing/segments/count", false, "POST", body);
  if (!r.ok) { markField(form, "mk-segment-error", r.data); return; }
  const sample = r.data.sample.map((m) => `${m.name} ${m.phone_masked}`).join("、");
  const more = r.data.count > r.data.sample.length;
  $("mk-count-result").textContent = lang === "zh"
    ? `${r.data.on}：${r.data.count} 人` + (sample ? `（${sample}${more ? " 等" : ""}）` : "")
    : `${r.data.on}: ${r.data.count} members` + (sample ? ` (${sample}${more ? " …" : ""})` : "");
});

function options(id, items) {
  const select = $(id);
  const was = select.value;
  select.innerHTML = "";
  for (const it of items) {
    const o = document.createElement("option");
    o.value = it.id;
    o.textContent = `${it.name}（${it.id}）`;
    select.appendChild(o);
  }
  if (was) select.value = was;
}

async function run(c, button, coupons) {
  button.disabled = true;
  const each = Math.max(1, parseInt(coupons.value || "1", 10) || 1);
  const r = await api(`/api/v1/marketing/campaigns/${encodeURIComponent(c.id)}/run?coupons=${each}`, false, "POST", undefined, { "X-Staff-Id": staffId() });
  button.disabled = false;
  if (!r.ok) { alert(said(r.data)); return; }
  const d = r.data;
  alert(lang === "zh"
    ? `目标 ${d.targeted} 人：发券 ${d.issued} 张，已领过 ${d.already} 张，达到每人限领 ${d.over_limit} 张，超出发行量 ${d.over_quota} 张`
    : `${d.targeted} targeted: ${d.issued} coupons issued, ${d.already} held already, ${d.over_limit} over the per-member limit, ${d.over_quota} over the quota`);
  await marketing();
}

const REPORT = {
  targeted: "发券会员", issued: "发券张数", redeemed: "核销张数", redemption_percent: "核销率%",
  discount: "优惠金额", redeemer_sales: "核销订单金额", window_from: "统计开始", window_to: "统计结束",
  targeted_avg_spend: "发券会员人均消费", others_avg_spend: "其他会员人均消费", uplift: "人均提升",
};
let reported = null;

async function report(c) {
  const r = await api(`/api/v1/marketing/campaigns/${encodeURIComponent(c.id)}/report`);
  if (!r.ok) { alert(said(r.data)); return; }
  reported = c.id;
  $("mk-report").hidden = false;
  $("mk-report-title").textContent = `${c.name}（${c.id}）`;
  table("mk-report-table", r.data.rows, REPORT);
}
for (const format of ["xlsx", "csv"]) {
  $(`mk-report-${format}`).addEventListener("click", () => {
    if (reported) download(format, `/api/v1/marketing/campaigns/${encodeURIComponent(reported)}/report?format=${format}`);
  });
}

async function outbox() {
  const r = await api("/api/v1/outbox");
  if (!r.ok) return;
  $("mk-outbox-counts").textContent = Object.entries(r.data.counts).map(([k, v]) => `${L(STATES[k] || k)} ${v}`).join(" · ");
  const rules = r.data.rules;
  const zh = lang === "zh";
  $("mk-outbox-rules").textContent = !rules
    ? (zh ? "未配置消息网关（hub.toml 的 [notify]）：不发送消息。" : "No message gateway configured ([notify] in hub.toml): no messages are sent.")
    : zh
      ? `免打扰 ${rules.quiet_from}:00–${rules.quiet_to}:00 · 每位会员每天营销消息最多 ${rules.marketing_per_day} 条 · ` +
        (rules.expiring_days ? `券到期前 ${rules.expiring_days} 天提醒` : "不发到期提醒") + " · " +
        (rules.birthday ? "发生日祝福" : "不发生日祝福") + ` · 每秒最多 ${rules.per_second} 条 · 保留 ${rules.keep_days} 天`
      : `Quiet hours ${rules.quiet_from}:00–${rules.quiet_to}:00 · at most ${rules.marketing_per_day} marketing messages a member a day · ` +
        (rules.expiring_days ? `coupon reminders ${rules.expiring_days} days before they run out` : "no coupon reminders") + " · " +
        (rules.birthday ? "birthday greetings" : "no birthday greetings") + ` · at most ${rules.per_second} a second · kept ${rules.keep_days} days`;
  const texts = $("mk-texts").querySelector("tbody");
  texts.innerHTML = "";
  for (const [k, v] of Object.entries(rules ? rules.texts : {})) {
    const tr = document.createElement("tr");
    cell(tr, L(TEXTS[k] || k));
    cell(tr, v);
    texts.appendChild(tr);
  }
  const body = $("mk-outbox").querySelector("tbody");
  body.innerHTML = "";
  for (const n of r.data.notices.slice(0, 50)) {
    const tr = document.createElement("tr");
    cell(tr, when(n.at_ms));
    cell(tr, L(KINDS[n.kind] || n.kind) + (n.purpose === "marketing" ? L("（营销）") : ""));
    cell(tr, n.store);
    cell(tr, n.member_id.slice(-6));
    cell(tr, L(STATES[n.state] || n.state)).className = "state-" + n.state;
    cell(tr, n.attempts);
    cell(tr, n.last_error || "");
    body.appendChild(tr);
  }
}

async function marketing() {
  const r = await api("/api/v1/marketing");
  if (!r.ok) return;
  const { templates, segments, campaigns } = r.data;
  options("mk-campaign-template", templates);
  options("mk-campaign-segment", segments);
  const tb = $("mk-templates").querySelector("tbody");
  tb.innerHTML = "";
  for (const tpl of templates) {
    const tr = document.createElement("tr");
    cell(tr, `${tpl.name}（${tpl.id}）`);
    cell(tr, offerText(tpl.offer) + (tpl.stacks ? L(" · 可同享") : ""));
    const v = tpl.validity;
    cell(tr, v.days ? (lang === "zh" ? `领取后 ${v.days.days} 天` : `${v.days.days} days from issue`) : `${v.dates.from} – ${v.dates.to}`);
    cell(tr, [...tpl.scope.skus, ...tpl.scope.categories].join(lang === "zh" ? "、" : ", ") || L("全部商品"));
    cell(tr, `${tpl.issued} / ${tpl.quota ?? L("不限")}`);
    cell(tr, tpl.per_member);
    tb.appendChild(tr);
  }
  const cb = $("mk-campaigns").querySelector("tbody");
  cb.innerHTML = "";
  for (const c of campaigns) {
    const tr = document.createElement("tr");
    cell(tr, `${c.name}（${c.id}）`);
    cell(tr, c.template);
    cell(tr, c.segment);
    cell(tr, L(c.schedule === "daily" ? "每天" : "一次"));
    cell(tr, c.issued);
    const last = c.runs[c.runs.length - 1];
    cell(tr, !last ? L("未执行") : lang === "zh"
      ? `${last.run}：目标 ${last.targeted}，发 ${last.issued}，已领 ${last.already}`
      : `${last.run}: ${last.targeted} targeted, ${last.issued} issued, ${last.already} had it`);
    const td = cell(tr, "");
    // 券包: coupons to each member in this run (at most the template's per-member limit).
    const each = document.createElement("input");
    each.type = "number";
    each.min = "1";
    each.max = "100";
    each.value = "1";
    each.className = "narrow";
    each.title = L("每人张数");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = L("执行");
    b.addEventListener("click", () => run(c, b, each));
    td.append(each, L("张/人"), " ", b);
    const e = document.createElement("button");
    e.type = "button";
    e.textContent = L("效果");
    e.addEventListener("click", () => report(c));
    td.appendChild(e);
    cb.appendChild(tr);
  }
  await outbox();
  shown = true;
}
window.marketing = marketing;
marketingLang();
