// 数据备份 on the till page (after app.js, whose t, api, $, said and lang it uses).
// 数据备份: the backups kept (newest first) and one taken now; a manager's (a cashier is refused).
const size = (bytes) => (bytes < 1048576 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 1048576).toFixed(1)} MB`);

async function loadBackups() {
  const r = await api("GET", "/api/v1/backups");
  const list = $("backup-list");
  list.textContent = "";
  if (!r.ok) {
    $("backup-error").textContent = said(r.data);
    return;
  }
  const every = t("backup_every").replace("{h}", r.data.every_hours).replace("{n}", r.data.keep);
  const head = document.createElement("li");
  head.textContent = r.data.every_hours > 0 ? every : "";
  list.appendChild(head);
  if (!r.data.backups.length) {
    const none = document.createElement("li");
    none.textContent = t("backup_none");
    list.appendChild(none);
  }
  for (const b of r.data.backups.slice(0, 5)) {
    const li = document.createElement("li");
    li.textContent = b.damaged
      ? `${t("backup_damaged")}: ${b.damaged}`
      : `${new Date(b.taken_ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: "Asia/Shanghai" })} · ${b.records} ${t("backup_records")} · ${size(b.bytes)}`;
    list.appendChild(li);
  }
}

$("backup-now").addEventListener("click", async () => {
  $("backup-error").textContent = "";
  $("backup-now").disabled = true;
  const r = await api("POST", "/api/v1/backups", {});
  $("backup-now").disabled = false;
  if (!r.ok) $("backup-error").textContent = said(r.data);
  loadBackups();
});
