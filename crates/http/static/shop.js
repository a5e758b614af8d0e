// tix shop: live availability and seat map (Server-Sent Events), seat selection summary, the
// seat grid's roving tabindex (arrow keys), zoom and drag-to-pan, live counts per section,
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
    // Every form of the page gets its own request id, so a double submit places one hold.
    Array.prototype.forEach.call(document.querySelectorAll("input[name=request_id]"), function (rid) {
      if (!(window.crypto && crypto.getRandomValues)) return;
      var b = new Uint32Array(2); crypto.getRandomValues(b);
      rid.value = "page-" + b[0].toString(16) + b[1].toString(16);
    });
    var chosen = document.getElementById("chosen");
    var names = { F: "free", H: "held", S: "sold", B: "blocked" };
    var spoken = { held: ", on hold", sold: ", sold", blocked: ", not for sale" };
    function summary() {
      if (!chosen) return;
      var picked = Array.prototype.map.call(
        document.querySelectorAll("#seatmap input:checked"),
        function (i) { return i.parentNode.getAttribute("data-name"); });
      chosen.textContent = picked.length ? "Chosen: " + picked.join("; ") + "." : "No seats chosen.";
    }
    var map = document.getElementById("seatmap");
    if (map) map.addEventListener("change", summary);
    // Live messages: the first of each connection has every seat ("seats", one letter each),
    // later ones only the seats that changed ("seats_changed": [[seat number, letter], ...]).
    // Only the shown section's seats are on the page; the overview's counts come from all.
    var labels = [];
    if (map) {
      Array.prototype.forEach.call(map.querySelectorAll("label.seat"), function (label) {
        labels[parseInt(label.getAttribute("data-seat"), 10)] = label;
      });
    }
    var letters = [];
    var blocks = document.querySelectorAll("a.block[data-first]");
    function recount() {
      Array.prototype.forEach.call(blocks, function (b) {
        var first = parseInt(b.getAttribute("data-first"), 10), last = parseInt(b.getAttribute("data-last"), 10);
        var free = 0;
        for (var n = first; n <= last; n++) if (letters[n] === "F") free++;
        var el = b.querySelector(".free-count");
        var text = free.toLocaleString("en-US");
        if (el && el.textContent !== text) el.textContent = text;
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
      var name = label.getAttribute("data-name") + (spoken[state] || "");
      input.setAttribute("aria-label", name);
      label.title = name;
    }
    if (map) roving(map);
    function apply(d) {
      ["available", "sold", "held"].forEach(function (k) {
        // Only a change is written: the counts are a polite live region.
        var el = document.getElementById(k); if (el && el.textContent !== String(d[k])) el.textContent = d[k];
      });
      var button = document.getElementById("order-now");
      if (button) { button.disabled = d.available === 0; button.textContent = d.available === 0 ? "Sold out" : "Order now"; }
      if (typeof d.seats === "string") {
        for (var n = 1; n <= d.seats.length; n++) letters[n] = d.seats.charAt(n - 1);
        for (var m = 1; m < labels.length; m++) if (labels[m]) paint(m, letters[m]);
      } else if (d.seats_changed) {
        d.seats_changed.forEach(function (c) { letters[c[0]] = c[1]; paint(c[0], c[1]); });
      }
      if (d.seats || d.seats_changed) { summary(); recount(); if (map) roving(map); }
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
  // The "your hold" banner on every page: minutes and seconds left, gone when it lapses.
  var banner = document.querySelector("[data-hold-expires]");
  if (banner) {
    var until = parseInt(banner.getAttribute("data-hold-expires"), 10);
    var tickBanner = function () {
      var left = Math.max(0, Math.round((until - Date.now()) / 1000));
      if (left === 0) { var b = document.getElementById("hold-banner"); if (b) b.hidden = true; return; }
      var m = Math.floor(left / 60), s = left % 60;
      banner.textContent = "Your tickets are held: " + m + ":" + (s < 10 ? "0" : "") + s + " left.";
      setTimeout(tickBanner, 1000);
    };
    tickBanner();
  }
  // The checkout's countdown: the clock ticks every second for the eyes only (aria-hidden);
  // the polite live region beside it speaks once a minute and when the hold lapses.
  var countdown = document.getElementById("countdown");
  var clock = document.getElementById("countdown-clock");
  var status = document.getElementById("countdown-status");
  if (countdown && clock && status) {
    var expires = parseInt(countdown.getAttribute("data-expires"), 10);
    var spoken = -1;
    status.className = "sr-only";
    var tick = function () {
      var left = Math.max(0, Math.round((expires - Date.now()) / 1000));
      if (left === 0) {
        clock.textContent = "";
        status.className = "";
        status.textContent = "Your hold has expired; the tickets are back on sale.";
        countdown.className = "countdown expired";
        var pay = document.getElementById("pay"); if (pay) pay.disabled = true;
        return;
      }
      var m = Math.floor(left / 60), s = left % 60;
      clock.textContent = "Your tickets are held for " + m + ":" + (s < 10 ? "0" : "") + s + " more.";
      var minutes = Math.ceil(left / 60);
      if (minutes !== spoken) {
        spoken = minutes;
        status.textContent = "Your tickets are held for " + (minutes === 1 ? "less than a minute" : "about " + minutes + " minutes") + " more.";
      }
      setTimeout(tick, 1000);
    };
    tick();
  }
  // The assistant: its forms are sent in the background and the transcript is replaced with
  // the one of the page the server answers with (the same page a browser without JavaScript
  // is redirected to); on an event page the widget shows the answer under its form.
  function sendChat(form) {
    var body = new URLSearchParams(new FormData(form));
    var button = form.querySelector("button"); if (button) button.disabled = true;
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.text().then(function (t) { return { url: r.url, html: t }; }); })
      .then(function (res) {
        var doc = new DOMParser().parseFromString(res.html, "text/html");
        var fresh = doc.getElementById("assistant");
        if (!fresh) { window.location = res.url; return; }
        if (form.hasAttribute("data-widget")) {
          var log = fresh.querySelectorAll("#chat-log > li.theirs");
          var answer = form.parentNode.querySelector(".chat-answer");
          var conv = fresh.querySelector("input[name=c]");
          if (conv) form.querySelector("input[name=c]").value = conv.value;
          answer.innerHTML = "";
          if (log.length) answer.appendChild(document.importNode(log[log.length - 1], true));
          var more = document.createElement("a");
          more.href = res.url; more.textContent = "Continue in the assistant";
          answer.appendChild(more);
          form.querySelector("input[name=text]").value = "";
          if (button) button.disabled = false;
          return;
        }
        var here = document.getElementById("assistant");
        here.parentNode.replaceChild(document.importNode(fresh, true), here);
        if (res.url && window.history && history.replaceState) history.replaceState(null, "", res.url);
        bindChat();
        var input = document.getElementById("chat-text"); if (input) input.focus();
        var last = document.getElementById("last"); if (last) last.scrollIntoView({ block: "nearest" });
      })
      .catch(function () { form.submit(); });
  }
  function bindChat() {
    Array.prototype.forEach.call(document.querySelectorAll("form.chat-form"), function (f) {
      if (f.getAttribute("data-bound")) return;
      f.setAttribute("data-bound", "1");
      f.addEventListener("submit", function (e) {
        if (!window.fetch || !window.DOMParser) return;
        e.preventDefault();
        sendChat(f);
      });
    });
  }
  // The seat grid is one tab stop: the seats are a roving tabindex (the chosen or first free
  // seat takes Tab; the others -1), Left/Right move along the row and Up/Down to the nearest
  // free seat of the row in front or behind, Home/End to the row's ends. Taken seats are
  // skipped (they are disabled). Called again after live updates change which seats are free.
  function roving(grid) {
    var rows = Array.prototype.map.call(grid.querySelectorAll(".seatrow"), function (r) {
      return Array.prototype.slice.call(r.querySelectorAll("input"));
    });
    var all = [].concat.apply([], rows);
    var current = all.filter(function (i) { return i.tabIndex === 0 && !i.disabled; })[0] ||
      all.filter(function (i) { return i.checked; })[0] ||
      all.filter(function (i) { return !i.disabled; })[0];
    all.forEach(function (i) { i.tabIndex = i === current ? 0 : -1; });
    if (grid.getAttribute("data-roving")) return;
    grid.setAttribute("data-roving", "1");
    function at(input) {
      for (var r = 0; r < rows.length; r++) { var c = rows[r].indexOf(input); if (c >= 0) return [r, c]; }
      return null;
    }
    function nearestIn(row, c) {
      var best = null;
      row.forEach(function (i, k) { if (!i.disabled && (best === null || Math.abs(k - c) < Math.abs(best - c))) best = k; });
      return best === null ? null : row[best];
    }
    function move(from, to) {
      if (!to) return;
      from.tabIndex = -1; to.tabIndex = 0; to.focus();
    }
    grid.addEventListener("keydown", function (e) {
      var input = e.target;
      if (input.tagName !== "INPUT") return;
      rows = Array.prototype.map.call(grid.querySelectorAll(".seatrow"), function (r) {
        return Array.prototype.slice.call(r.querySelectorAll("input"));
      });
      var p = at(input); if (!p) return;
      var row = rows[p[0]], k, target = null;
      if (e.key === "ArrowRight") { for (k = p[1] + 1; k < row.length && !target; k++) if (!row[k].disabled) target = row[k]; }
      else if (e.key === "ArrowLeft") { for (k = p[1] - 1; k >= 0 && !target; k--) if (!row[k].disabled) target = row[k]; }
      else if (e.key === "ArrowDown") { for (k = p[0] + 1; k < rows.length && !target; k++) target = nearestIn(rows[k], p[1]); }
      else if (e.key === "ArrowUp") { for (k = p[0] - 1; k >= 0 && !target; k--) target = nearestIn(rows[k], p[1]); }
      else if (e.key === "Home") { target = nearestIn(row, 0); }
      else if (e.key === "End") { target = nearestIn(row, row.length - 1); }
      else return;
      e.preventDefault();
      move(input, target);
    });
    grid.addEventListener("focusin", function (e) {
      if (e.target.tagName !== "INPUT") return;
      Array.prototype.forEach.call(grid.querySelectorAll("input[tabindex='0']"), function (i) { if (i !== e.target) i.tabIndex = -1; });
      e.target.tabIndex = 0;
    });
  }
  // Zoom: three seat sizes (26, 34 and 44 px; the smallest is still a 24 px touch target).
  var zoom = document.getElementById("zoom");
  var grid = document.getElementById("seatmap");
  if (zoom && grid) {
    var level = 1;
    zoom.hidden = false;
    zoom.addEventListener("click", function (e) {
      var step = parseInt(e.target.getAttribute("data-zoom") || "0", 10);
      if (!step) return;
      level = Math.max(1, Math.min(3, level + step));
      grid.classList.remove("zoom-2", "zoom-3");
      if (level > 1) grid.classList.add("zoom-" + level);
    });
  }
  // Pan by dragging the map's background with a mouse (touch screens scroll it natively).
  var box = document.getElementById("seatmap-scroll");
  if (box) {
    var drag = null;
    box.addEventListener("pointerdown", function (e) {
      if (e.pointerType !== "mouse" || e.target.tagName === "INPUT" || e.target.tagName === "LABEL") return;
      drag = { x: e.clientX, y: e.clientY, left: box.scrollLeft, top: box.scrollTop };
      box.classList.add("panning");
    });
    window.addEventListener("pointermove", function (e) {
      if (!drag) return;
      box.scrollLeft = drag.left - (e.clientX - drag.x);
      box.scrollTop = drag.top - (e.clientY - drag.y);
    });
    window.addEventListener("pointerup", function () { drag = null; box.classList.remove("panning"); });
  }
  bindChat();
})();
// The door: each scan is posted in the background and the verdict and the count are replaced
// in place (the camera keeps running), with a beep — two rising tones for admitted, two low
// buzzes for refused — and the field emptied and focused after every result. "Scan with
// camera" reads QR codes with the browser's BarcodeDetector, or else with the vendored jsQR,
// loaded from this host on first use. Without JavaScript the form posts and the page answers
// the same (the camera button stays hidden).
(function () {
  var form = document.getElementById("door-form");
  if (!form) return;
  var door = document.getElementById("door");
  var field = document.getElementById("code");
  var scanButton = document.getElementById("scan");
  var camera = document.getElementById("camera");
  var video = document.getElementById("camera-video");
  var status = document.getElementById("camera-status");

  var audio = null;
  function audioContext() {
    var A = window.AudioContext || window.webkitAudioContext;
    if (!A) return null;
    if (!audio) { try { audio = new A(); } catch (e) { return null; } }
    if (audio.state === "suspended") audio.resume();
    return audio;
  }
  // Browsers let a page play sound only after a gesture: the first click or key opens it.
  document.addEventListener("pointerdown", audioContext, { once: true });
  document.addEventListener("keydown", audioContext, { once: true });
  function beep(admitted) {
    var ctx = audioContext();
    if (!ctx) return;
    var tones = admitted ? [[880, 0, 0.12], [1320, 0.13, 0.16]] : [[196, 0, 0.2], [196, 0.28, 0.2]];
    tones.forEach(function (t) {
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      var start = ctx.currentTime + t[1];
      osc.type = admitted ? "sine" : "square";
      osc.frequency.value = t[0];
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + t[2]);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(start);
      osc.stop(start + t[2] + 0.02);
    });
  }

  var stream = null, busy = false, results = 0;
  var coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
  function ready() {
    field.value = "";
    // On a phone scanning with its camera, focusing the field would open the keyboard over it;
    // with the camera on, focusing must not scroll the verdict and the view away.
    if (!(stream && coarse)) field.focus({ preventScroll: !!stream });
  }
  function swap(doc, id) {
    var here = document.getElementById(id), fresh = doc.getElementById(id);
    if (here && fresh) here.innerHTML = fresh.innerHTML;
    else if (here) here.parentNode.removeChild(here);
    else if (fresh) document.getElementById("door-live").appendChild(document.importNode(fresh, true));
  }
  function submit() {
    if (busy) return;
    busy = true;
    var body = new URLSearchParams(new FormData(form));
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.text().then(function (t) { return { url: r.url, html: t }; }); })
      .then(function (res) {
        var doc = new DOMParser().parseFromString(res.html, "text/html");
        if (!doc.getElementById("door-live")) { window.location = res.url; return; }
        swap(doc, "door-verdict");
        swap(doc, "door-count");
        var last = doc.querySelector("input[name=last_event]");
        form.querySelector("input[name=last_event]").value = last ? last.value : "";
        var result = document.getElementById("result");
        beep(!!result && result.getAttribute("data-outcome") === "admitted");
        results += 1;
        door.setAttribute("data-results", String(results));
        busy = false;
        ready();
      })
      .catch(function () { busy = false; form.submit(); });
  }
  form.addEventListener("submit", function (e) {
    if (!window.fetch || !window.DOMParser || !window.URLSearchParams) return;
    e.preventDefault();
    submit();
  });

  // Decoding: BarcodeDetector where it reads QR codes, else jsQR on a downscaled frame.
  var detector = null, loading = null, canvas = null;
  function loadJsQR() {
    if (window.jsQR) return Promise.resolve(window.jsQR);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = door.getAttribute("data-jsqr");
        s.onload = function () { if (window.jsQR) resolve(window.jsQR); else reject(new Error("no decoder")); };
        s.onerror = function () { loading = null; reject(new Error("the QR decoder did not load")); };
        document.head.appendChild(s);
      });
    }
    return loading;
  }
  function nativeDetector() {
    if (!("BarcodeDetector" in window) || !window.BarcodeDetector.getSupportedFormats) return Promise.resolve(null);
    return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      return formats.indexOf("qr_code") >= 0 ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
    }, function () { return null; });
  }
  // Returns (a promise of) the text of the QR code in a video, image or canvas, or null.
  // `useJsQR` skips BarcodeDetector (tests; browsers whose detector misreads).
  function decode(source, useJsQR) {
    if (detector && !useJsQR) {
      return detector.detect(source).then(function (found) { return found.length ? found[0].rawValue : null; });
    }
    return loadJsQR().then(function (jsQR) {
      var w = source.videoWidth || source.width, h = source.videoHeight || source.height;
      if (!w || !h) return null;
      var scale = Math.min(1, 800 / Math.max(w, h));
      canvas = canvas || document.createElement("canvas");
      canvas.width = Math.round(w * scale);
      canvas.height = Math.round(h * scale);
      var g = canvas.getContext("2d", { willReadFrequently: true });
      g.drawImage(source, 0, 0, canvas.width, canvas.height);
      var img = g.getImageData(0, 0, canvas.width, canvas.height);
      var found = jsQR(img.data, img.width, img.height, { inversionAttempts: "dontInvert" });
      return found ? found.data : null;
    });
  }
  // A decoded code is submitted as if typed. The same code seen again less than 4 s after it
  // was last seen is the same ticket still in front of the camera, not a second scan: a ticket
  // held in view is submitted once, however long it stays there.
  var lastCode = "", lastAt = 0;
  function scanned(code) {
    code = (code || "").trim();
    var now = Date.now();
    if (code && code === lastCode && now - lastAt < 4000) { lastAt = now; return false; }
    if (!code || busy) return false;
    lastCode = code;
    lastAt = now;
    field.value = code;
    submit();
    return true;
  }
  var timer = null;
  function frame() {
    if (!stream) return;
    if (busy || video.readyState < 2) { timer = setTimeout(frame, 150); return; }
    decode(video).then(function (code) { if (code) scanned(code); }, function () {})
      .then(function () { if (stream) timer = setTimeout(frame, 120); });
  }
  function stopCamera() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    clearTimeout(timer);
    video.srcObject = null;
    camera.hidden = true;
    scanButton.hidden = false;
    ready();
  }
  function startCamera() {
    status.textContent = "Opening the camera…";
    nativeDetector().then(function (d) {
      detector = d;
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      camera.hidden = false;
      scanButton.hidden = true;
      status.textContent = "Camera on: hold a ticket's QR code in view.";
      // The verdict and the camera's view together at the top of the screen.
      var live = document.getElementById("door-live");
      if (live.scrollIntoView) live.scrollIntoView({ block: "start" });
      return video.play();
    }).then(frame).catch(function (e) {
      stopCamera();
      status.textContent = "The camera could not be opened (" + ((e && e.name) || e) + "). Type or scan the code instead.";
    });
  }
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    scanButton.hidden = false;
    scanButton.addEventListener("click", startCamera);
    document.getElementById("scan-stop").addEventListener("click", function () {
      stopCamera();
      status.textContent = "Camera off.";
    });
  }
  // For the browser tests, which have no camera: decode an image, and scan a decoded code.
  window.tixDoor = { decode: decode, scanned: scanned };
})();
