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
    // The live part as it is now: each refresh puts a new one in its place.
    const here = document.getElementById(live.id);
    const active = document.activeElement;
    return here && active && here.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
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
    if (typing()) {
      // The person began to type while the page was fetched: what they typed stays.
      pending = true;
      return;
    }
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

  // From the version the page shows: a change while it loaded is not missed.
  new EventSource("/events?since=" + encodeURIComponent(live.dataset.version)).onmessage = soon;
  document.addEventListener("focusout", function () {
    if (pending) {
      soon();
    }
  });
  // The clocks ("47 min left") move on even when nothing happens.
  setInterval(soon, 30000);
})();
