// "New repository" opens its dialog in place: the link's page (/-/new,
// which renders the dialog open, and is what happens without script) is
// fetched, its <dialog> taken and shown modally over this page. The form
// inside posts as it does without script.
(function () {
  "use strict";
  document.querySelectorAll("a[data-dialog]").forEach(function (link) {
    link.addEventListener("click", function (ev) {
      if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey || !window.HTMLDialogElement) return;
      var id = link.getAttribute("data-dialog");
      var existing = document.getElementById(id);
      if (existing && existing.tagName === "DIALOG") {
        ev.preventDefault();
        if (!existing.open) existing.showModal();
        return;
      }
      ev.preventDefault();
      fetch(link.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (res) { if (!res.ok) throw new Error(res.status); return res.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var dialog = doc.getElementById(id);
          if (!dialog || dialog.tagName !== "DIALOG") throw new Error("no dialog");
          dialog.removeAttribute("open");
          dialog = document.importNode(dialog, true);
          document.querySelector("main").appendChild(dialog);
          // Cancel closes it here instead of leaving the page.
          dialog.querySelectorAll("a[data-close]").forEach(function (a) {
            a.addEventListener("click", function (e) { e.preventDefault(); dialog.close(); });
          });
          dialog.showModal();
          var first = dialog.querySelector("input:not([type=hidden]), select, textarea");
          if (first) first.focus();
        })
        .catch(function () { window.location.href = link.href; });
    });
  });
})();
