// keygate dashboard: small enhancements only. Every page works without this
// file; it reveals the Copy buttons, copies, warns before leaving a page
// that shows a secret once, and focuses that secret.
"use strict";
(function () {
  var leaving = false;

  function init(root) {
    root.querySelectorAll("button[data-copy][hidden]").forEach(function (b) {
      b.hidden = false;
    });
    var secret = root.querySelector("[data-show-once] .secret");
    if (secret) {
      secret.focus();
      secret.select();
    }
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest("button[data-copy]");
    if (button) {
      var field = document.getElementById(button.getAttribute("data-copy"));
      var status = button.parentElement.querySelector(".copied");
      if (!field || !navigator.clipboard) return;
      navigator.clipboard.writeText(field.value).then(function () {
        if (status) status.textContent = "Copied";
      }, function () {
        field.select();
        if (status) status.textContent = "Copy failed: select the text and copy it";
      });
      return;
    }
    if (ev.target.closest("a.done")) leaving = true;
  });

  window.addEventListener("beforeunload", function (ev) {
    if (!leaving && document.querySelector("[data-show-once]")) {
      ev.preventDefault();
      ev.returnValue = "";
    }
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // htmx 4 names its events htmx:after:swap; older releases htmx:afterSwap.
  ["htmx:after:swap", "htmx:afterSwap"].forEach(function (name) {
    document.addEventListener(name, function () { init(document); });
  });
})();
