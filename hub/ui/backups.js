// 数据备份 on headquarters' page (after app.js, whose t, api, $, said and when it uses): the
// backups kept (newest first) and one taken now; an admin's (others are refused).
const size = (bytes) => (bytes < 1048576 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 1048576).toFixed(1)} MB`);

async function loadBackups() {
  const r = await api("/api/v1/backups");
  const list = $("backup-list");
  list.textContent = "";
  if (!r.ok) {
    $("backup-error").textContent = said(r.data);
    return;
  }
  const line = (text) => {
    const li = document.createElement("li");
    li.textContent = text;
    list.appendChild(li);
  };
  const db = r.data.database;
  $("backup-now").hidden = Boolean(db);
  if (db) {
    line(t("backup_on_postgres").replace("{at}", db.at).replace("{active}", db.active).replace("{epoch}", db.epoch));
    return;
  }
  if (r.data.every_hours > 0) line(t("backup_every").replace("{h}", r.data.every_hours).replace("{n}", r.data.keep));
  if (!r.data.backups.length) line(t("backup_none"));
  for (const b of r.data.backups.slice(0, 5)) {
    line(b.damaged
      ? `${t("backup_damaged")}: ${b.damaged}`
      : `${when(b.taken_ms)} · ${t("backup_line").replace("{stores}", b.stores).replace("{members}", b.members).replace("{size}", size(b.bytes))}`);
  }
}

$("backup-now").addEventListener("click", async () => {
  $("backup-error").textContent = "";
  $("backup-now").disabled = true;
  const r = await api("/api/v1/backups", false, "POST", {});
  $("backup-now").disabled = false;
  if (!r.ok) $("backup-error").textContent = said(r.data);
  loadBackups();
});
