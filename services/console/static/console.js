// Live updates, an enhancement: every page works without this script.
// When the record changes, the console says so over server-sent events; the page fetches itself
// again and swaps in its live part, unless the person is typing in it.
"use strict";

(function () {
  const live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) {
    return;
  }
  let pending = false;

  function typing() {
    const active = document.activeElement;
    return active && live.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }

  async function refresh() {
    if (typing()) {
      pending = true;
      return;
    }
    pending = false;
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) {
      return;
    }
    const fresh = new DOMParser()
      .parseFromString(await response.text(), "text/html")
      .getElementById(live.id);
    const here = document.getElementById(live.id);
    if (fresh && here) {
      here.replaceWith(document.importNode(fresh, true));
    }
  }

  let timer = null;
  function soon() {
    // A burst of events makes one fetch.
    clearTimeout(timer);
    timer = setTimeout(refresh, 100);
  }

  new EventSource("/events").onmessage = soon;
  document.addEventListener("focusout", function () {
    if (pending) {
      soon();
    }
  });
  // The clocks ("47 min left") move on even when nothing happens.
  setInterval(soon, 30000);
})();
