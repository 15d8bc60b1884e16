// Progressive enhancement: live updates over server-sent events. The pages work without it.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-live-url");
  document.querySelectorAll("form [data-confirm]").forEach(function (button) {
    button.form.addEventListener("submit", function () { button.disabled = true; });
  });
  if (!url || !window.EventSource) { return; }
  var dot = document.querySelector(".live-dot");
  var source = new EventSource(url);
  function all(name) { return document.querySelectorAll('[data-live="' + name + '"]'); }
  function setText(name, value) {
    all(name).forEach(function (el) { if (el.textContent !== value) { el.textContent = value; } });
  }
  function setProgress(value) {
    all("progress").forEach(function (el) {
      var width = value === null ? 0 : value;
      el.querySelector(".bar").style.width = width.toFixed(1) + "%";
      el.querySelector(".label").textContent = value === null ? "—" : Math.round(value) + "%";
      el.setAttribute("aria-valuenow", String(Math.round(width)));
    });
  }
  function setLogs(lines) {
    all("logs").forEach(function (list) {
      if (String(lines.length) === list.getAttribute("data-count")) { return; }
      list.textContent = "";
      lines.forEach(function (line) {
        var item = document.createElement("li");
        item.textContent = line;
        list.appendChild(item);
      });
      list.setAttribute("data-count", String(lines.length));
      var empty = list.parentNode.querySelector(".empty");
      if (empty) { empty.remove(); }
    });
  }
  function setStatus(value) {
    all("status").forEach(function (el) {
      el.textContent = value;
      el.className = "badge s-" + value;
    });
  }
  source.addEventListener("open", function () { if (dot) { dot.classList.add("on"); } });
  source.addEventListener("error", function () { if (dot) { dot.classList.remove("on"); } });
  source.addEventListener("update", function (event) {
    var data = JSON.parse(event.data);
    Object.keys(data).forEach(function (key) {
      if (key === "progress") { setProgress(data.progress); }
      else if (key === "logs") { setLogs(data.logs); }
      else if (key === "status") { setStatus(data.status); }
      else if (key === "context_html") {
        // rendered and escaped by the server, like the page itself
        all("context").forEach(function (el) {
          if (el.innerHTML !== data.context_html) { el.innerHTML = data.context_html; }
        });
      }
      else if (typeof data[key] === "string") { setText(key, data[key]); }
    });
    if (data.terminal) {
      source.close();
      window.location.reload();
    }
  });
})();
