// tix shop: live availability and seat map (Server-Sent Events), seat selection summary,
// a request id per order form (a double submit places one hold), and the hold countdown.
// Everything works without JavaScript too, only less live.
(function () {
  "use strict";
  // Print buttons (the Content-Security-Policy allows no inline handlers).
  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  var page = document.querySelector("[data-event]");
  if (page) {
    var id = page.getAttribute("data-event");
    var rid = document.getElementById("request_id");
    if (rid && window.crypto && crypto.getRandomValues) {
      var b = new Uint32Array(2); crypto.getRandomValues(b);
      rid.value = "page-" + b[0].toString(16) + b[1].toString(16);
    }
    var chosen = document.getElementById("chosen");
    var names = { F: "free", H: "held", S: "sold", B: "blocked" };
    function summary() {
      if (!chosen) return;
      var picked = Array.prototype.map.call(
        document.querySelectorAll("#seatmap input:checked"), function (i) { return i.value; });
      chosen.textContent = picked.length ? "Chosen: seat" + (picked.length > 1 ? "s " : " ") + picked.join(", ") : "No seats chosen.";
    }
    var map = document.getElementById("seatmap");
    if (map) map.addEventListener("change", summary);
    // Live messages: the first of each connection has every seat ("seats", one letter each),
    // later ones only the seats that changed ("seats_changed": [[seat number, letter], ...]).
    var labels = [];
    if (map) {
      Array.prototype.forEach.call(map.querySelectorAll("label.seat"), function (label) {
        labels[parseInt(label.getAttribute("data-seat"), 10)] = label;
      });
    }
    function paint(n, letter) {
      var label = labels[n];
      if (!label) return;
      var state = names[letter] || "free";
      var input = label.querySelector("input");
      if (state !== "free" && input.checked) { input.checked = false; }
      label.className = "seat " + state;
      input.disabled = state !== "free";
    }
    function apply(d) {
      ["available", "sold", "held"].forEach(function (k) {
        var el = document.getElementById(k); if (el) el.textContent = d[k];
      });
      var button = document.getElementById("order-now");
      if (button) { button.disabled = d.available === 0; button.textContent = d.available === 0 ? "Sold out" : "Order now"; }
      if (typeof d.seats === "string") {
        for (var n = 1; n < labels.length; n++) paint(n, d.seats.charAt(n - 1));
      } else if (d.seats_changed) {
        d.seats_changed.forEach(function (c) { paint(c[0], c[1]); });
      }
      if (d.seats || d.seats_changed) summary();
    }
    // The browser reconnects by itself after a dropped stream (and gets the full state
    // again); a refused one (the server is at its cap) is retried here, later each time.
    var wait = 5000;
    function connect() {
      var source = new EventSource("/events/" + id + "/live");
      source.addEventListener("availability", function (e) { wait = 5000; apply(JSON.parse(e.data)); });
      source.addEventListener("error", function () {
        if (source.readyState !== EventSource.CLOSED) return;
        setTimeout(connect, wait + Math.random() * wait);
        wait = Math.min(wait * 2, 120000);
      });
    }
    if (window.EventSource) connect();
  }
  var countdown = document.getElementById("countdown");
  if (countdown) {
    var expires = parseInt(countdown.getAttribute("data-expires"), 10);
    var tick = function () {
      var left = Math.max(0, Math.round((expires - Date.now()) / 1000));
      if (left === 0) {
        countdown.textContent = "Your hold has expired; the tickets are back on sale.";
        countdown.className = "countdown expired";
        var pay = document.getElementById("pay"); if (pay) pay.disabled = true;
        return;
      }
      var m = Math.floor(left / 60), s = left % 60;
      countdown.textContent = "Your tickets are held for " + m + ":" + (s < 10 ? "0" : "") + s + " more.";
      setTimeout(tick, 1000);
    };
    tick();
  }
})();
