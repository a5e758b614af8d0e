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
    if (window.EventSource) {
      var source = new EventSource("/events/" + id + "/live");
      source.addEventListener("availability", function (e) {
        var d = JSON.parse(e.data);
        ["available", "sold", "held"].forEach(function (k) {
          var el = document.getElementById(k); if (el) el.textContent = d[k];
        });
        var button = document.getElementById("order-now");
        if (button) { button.disabled = d.available === 0; button.textContent = d.available === 0 ? "Sold out" : "Order now"; }
        if (d.seats && map) {
          var seats = map.querySelectorAll("label.seat");
          for (var i = 0; i < seats.length; i++) {
            var label = seats[i], n = parseInt(label.getAttribute("data-seat"), 10);
            var state = names[d.seats.charAt(n - 1)] || "free";
            var input = label.querySelector("input");
            if (state !== "free" && input.checked) { input.checked = false; }
            label.className = "seat " + state;
            input.disabled = state !== "free";
          }
          summary();
        }
      });
    }
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
