// The waiting room page: follows the visitor's place live (Server-Sent Events from
// /events/{id}/queue/live) and reloads the page when its status changes (admitted, expired,
// sold out), so the server renders what to do next. Without JavaScript the page refreshes
// itself every 15 seconds instead.
(function () {
  "use strict";
  var panel = document.getElementById("queue");
  if (!panel || !window.EventSource) return;
  var id = panel.getAttribute("data-event");
  var shown = document.getElementById("queue-position") ? "waiting" : null;
  if (!shown) return;
  function text(elementId, value) {
    var el = document.getElementById(elementId);
    if (el && value !== undefined && value !== null) el.textContent = String(value);
  }
  function words(seconds) {
    if (seconds <= 0) return "none — it is your turn";
    if (seconds < 60) return "under a minute";
    var m = Math.ceil(seconds / 60);
    if (seconds < 3600) return "about " + m + " minute" + (m === 1 ? "" : "s");
    var h = Math.floor(seconds / 3600);
    return "about " + h + " hour" + (h === 1 ? "" : "s") + " " + Math.floor((seconds % 3600) / 60) + " minutes";
  }
  var source = new EventSource("/events/" + id + "/queue/live");
  source.addEventListener("queue", function (e) {
    var s;
    try { s = JSON.parse(e.data); } catch (err) { return; }
    if (s.status !== shown) {
      source.close();
      window.location.reload();
      return;
    }
    text("queue-position", s.position);
    text("queue-wait", words(s.wait_s || 0));
    text("queue-admitted", s.admitted);
    text("queue-left", s.tickets_left);
    var bar = document.getElementById("queue-progress");
    if (bar && s.position) {
      var pct = Math.floor(s.admitted * 100 / (s.admitted + s.position));
      bar.value = pct;
      bar.textContent = pct + " %";
    }
  });
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(function () { window.location.reload(); }, 5000);
    }
  };
})();
