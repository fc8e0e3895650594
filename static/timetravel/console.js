// Live updates: a page with data-ws listens on that websocket and, on each event,
// reloads its live region (data-live-url) from the server, which renders it as on a
// full page load. No framework; nothing from a CDN.
(function () {
  "use strict";
  const body = document.body;
  const wsPath = body.dataset.ws;
  if (!wsPath) return;
  const liveUrl = body.dataset.liveUrl;
  const target = document.querySelector(body.dataset.liveTarget);
  const indicator = document.getElementById("live-indicator");
  let delay = 500;
  let pending = null;
  // Rows written since the page loaded are highlighted, however many refreshes it took.
  const initial = new Set(target ? [...target.querySelectorAll("[data-checkpoint-id]")].map((e) => e.dataset.checkpointId) : []);

  function setLive(on) {
    if (!indicator) return;
    indicator.textContent = on ? "live" : "offline";
    indicator.classList.toggle("on", on);
    body.dataset.live = on ? "on" : "off";
  }

  async function refresh(wantId, attempt) {
    if (!target || !liveUrl) return;
    const response = await fetch(liveUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok) return;
    const html = await response.text();
    const box = document.createElement("div");
    box.innerHTML = html;
    const fresh = box.querySelector(body.dataset.liveTarget) || box;
    if (wantId && !fresh.querySelector(`[data-checkpoint-id="${CSS.escape(wantId)}"]`) && attempt < 5) {
      // The event can beat the commit by a moment on another process: ask again.
      setTimeout(() => refresh(wantId, attempt + 1), 200 * (attempt + 1));
      return;
    }
    target.innerHTML = fresh === box ? html : fresh.innerHTML;
    target.querySelectorAll("[data-checkpoint-id]").forEach((row) => {
      if (initial.size && !initial.has(row.dataset.checkpointId)) row.classList.add("fresh");
    });
    const note = document.getElementById("new-checkpoints");
    if (note && wantId) note.hidden = false;
    const list = fresh.matches && fresh.matches("[data-count]") ? fresh : fresh.querySelector("[data-count]");
    const badge = document.getElementById("inbox-count");
    if (list) {
      target.dataset.count = list.dataset.count;
      if (badge) badge.textContent = list.dataset.count;
    }
  }

  function schedule(wantId) {
    clearTimeout(pending);
    pending = setTimeout(() => refresh(wantId, 0), 50);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + wsPath);
    socket.onopen = () => { delay = 500; setLive(true); };
    socket.onclose = () => {
      setLive(false);
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      body.dispatchEvent(new CustomEvent("console:" + event.type, { detail: event.data }));
      if (event.type === "checkpoint.created") schedule(event.data.checkpoint_id);
      else if (event.type === "thread.changed") schedule(event.data.head);
      else if (event.type === "run.updated" || event.type.startsWith("interrupt.")) {
        if (event.type === "interrupt.resolved" && target) {
          const gone = target.querySelector(`[data-interrupt-id="${CSS.escape(event.data.interrupt_id)}"]`);
          if (gone) gone.classList.add("leaving");
        }
        schedule(null);
      }
    };
    current = socket;
  }
  let current = null;
  setInterval(() => current && current.readyState === 1 && current.send('{"type":"ping"}'), 25000);
  connect();
})();
