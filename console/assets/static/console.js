// jetevents console: live numbers without a reload, and "select all".
// Plain JavaScript, no library, nothing from the network but this console.
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-live-url");
  var every = parseInt(body.getAttribute("data-refresh"), 10) || 3000;
  var status = document.getElementById("live-status");

  function apply(values) {
    var els = document.querySelectorAll("[data-live]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var v = values[el.getAttribute("data-live")];
      if (v === undefined) continue;
      if (el.textContent !== v) el.textContent = v;
      if (el.hasAttribute("data-live-state")) el.setAttribute("data-state", v);
    }
  }

  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (j) {
        apply(j.values || {});
        if (status) { status.textContent = "live " + new Date().toLocaleTimeString(); status.className = "live"; }
      })
      .catch(function () {
        if (status) { status.textContent = "offline"; status.className = "live stale"; }
      })
      .then(function () { setTimeout(tick, every); });
  }
  if (url && document.querySelector("[data-live]")) setTimeout(tick, every);

  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      var boxes = document.querySelectorAll("input[name=sel]");
      for (var i = 0; i < boxes.length; i++) boxes[i].checked = all.checked;
    });
  }
})();
