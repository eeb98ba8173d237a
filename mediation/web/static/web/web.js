/* Small progressive enhancements; every page works without them. */
(function () {
  "use strict";

  // Formsets: "增加当事人" clones the empty form and bumps TOTAL_FORMS.
  document.querySelectorAll("[data-add-form]").forEach(function (button) {
    button.addEventListener("click", function () {
      var prefix = button.dataset.prefix;
      var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
      var template = document.getElementById(button.dataset.template);
      var target = document.getElementById(button.dataset.addForm);
      var index = parseInt(total.value, 10);
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      var wrapper = document.createElement("div");
      wrapper.innerHTML = html;
      var node = wrapper.firstElementChild;
      var legend = node.querySelector("legend");
      if (legend) { legend.textContent = legend.textContent + " " + (index + 1); }
      target.appendChild(node);
      total.value = String(index + 1);
      var first = node.querySelector("input, select");
      if (first) { first.focus(); }
    });
  });

  // Polling: <div data-poll-url="..." data-poll-seconds="15"> is refreshed in place,
  // keeping ticked checkboxes. Paused while the tab is hidden.
  document.querySelectorAll("[data-poll-url]").forEach(function (box) {
    var seconds = parseInt(box.dataset.pollSeconds || "15", 10);
    function refresh() {
      if (document.hidden) { return; }
      var checked = Array.prototype.map.call(
        box.querySelectorAll("input[type=checkbox]:checked"), function (el) { return el.value; });
      fetch(box.dataset.pollUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          box.innerHTML = html;
          checked.forEach(function (value) {
            var el = box.querySelector('input[type=checkbox][value="' + value + '"]');
            if (el) { el.checked = true; }
          });
          box.dispatchEvent(new CustomEvent("poll:updated", { bubbles: true }));
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    }
    window.setInterval(refresh, seconds * 1000);
  });

  // "全选" boxes: <input type=checkbox data-check-all="name">.
  document.addEventListener("change", function (event) {
    var all = event.target.closest && event.target.closest("[data-check-all]");
    if (!all) { return; }
    document.querySelectorAll('input[type=checkbox][name="' + all.dataset.checkAll + '"]')
      .forEach(function (el) { el.checked = all.checked; });
  });
})();
