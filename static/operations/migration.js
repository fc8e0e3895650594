// Live progress of a migration: a websocket when Channels answers, polling otherwise.
(function () {
  const root = document.getElementById("migration");
  if (!root) return;
  const set = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };
  let finished = false;
  function show(d) {
    set("m-state", d.state); set("m-threads", d.threads_done); set("m-total", d.threads_total);
    set("m-checkpoints", d.checkpoints_copied); set("m-writes", d.writes_copied);
    set("m-blobs", d.blobs_copied); set("m-store", d.store_items_copied); set("m-error", d.error || "");
    set("m-attempts", d.attempts);
    const bar = document.getElementById("m-progress");
    if (bar) { bar.value = d.percent; bar.textContent = d.percent + " %"; }
    if ((d.state === "succeeded" || d.state === "failed") && !finished) {
      finished = true;
      setTimeout(() => window.location.reload(), 300);  // the report is drawn by the server
    }
  }
  function poll() {
    if (finished) return;
    fetch(root.dataset.json, { credentials: "same-origin" }).then(r => r.json()).then(show).catch(() => {});
    setTimeout(poll, 2000);
  }
  const state = document.getElementById("m-state").textContent;
  if (state === "succeeded" || state === "failed") return;
  try {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + root.dataset.ws);
    ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.type === "migration.progress") show(m.data); };
    ws.onclose = () => poll();
  } catch (e) { poll(); }
  setTimeout(poll, 2000);
})();
