// The live view: ask the server every __POLL_MS__ ms whether the catalogue changed;
// when it did, fetch this page again and put its new content in place (no reload).
// Text from the server is never interpreted as script: the page is parsed as an
// inert document and the Content-Security-Policy allows only this file to run.
"use strict";

(function () {
  const body = document.body;
  if (body.dataset.live !== "1") {
    return;
  }
  let mark = body.dataset.mark;
  let offset = 0; // server clock minus this browser's clock, in ms
  let busy = false;

  function setOffset(serverNow) {
    const t = Date.parse(serverNow);
    if (!Number.isNaN(t)) {
      offset = t - Date.now();
    }
  }

  function connection(text) {
    const el = document.getElementById("connection");
    if (el) {
      el.textContent = text;
    }
  }

  function tick() {
    const now = Date.now() + offset;
    for (const el of document.querySelectorAll("[data-since]")) {
      const t = Date.parse(el.dataset.since);
      if (Number.isNaN(t)) {
        continue;
      }
      const s = Math.max(0, Math.round((now - t) / 1000));
      el.textContent = s < 120 ? s + " s ago" : s < 7200 ? Math.floor(s / 60) + " min ago"
        : Math.floor(s / 3600) + " h ago";
    }
  }

  async function refresh() {
    const answer = await fetch(window.location.href, {credentials: "same-origin",
                                                      cache: "no-store"});
    if (!answer.ok) {
      throw new Error("page answered " + answer.status);
    }
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
    const main = document.getElementById("content");
    const next = fresh.getElementById("content");
    if (main && next) {
      main.replaceChildren(...Array.from(next.childNodes, (n) => document.importNode(n, true)));
    }
    mark = fresh.body.dataset.mark;
    body.dataset.mark = mark;
    setOffset(fresh.body.dataset.now);
    tick();
  }

  async function poll() {
    if (busy) {
      return;
    }
    busy = true;
    try {
      const answer = await fetch(body.dataset.pulse, {credentials: "same-origin",
                                                      cache: "no-store"});
      if (!answer.ok) {
        throw new Error("pulse answered " + answer.status);
      }
      const pulse = await answer.json();
      setOffset(pulse.now);
      if (pulse.mark !== mark) {
        await refresh();
      }
      connection("");
    } catch (err) {
      connection("server not reachable: showing the state of " + new Date().toISOString());
    } finally {
      busy = false;
    }
  }

  setOffset(body.dataset.now);
  tick();
  window.setInterval(tick, 1000);
  window.setInterval(poll, __POLL_MS__);
})();
