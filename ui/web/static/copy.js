// Copy buttons: a <button class="copy" data-copy="ID" hidden> copies the
// value (or text) of the element with that id. Without script the buttons
// stay hidden and the readonly field can be selected by hand.
(function () {
  "use strict";
  function copy(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var text = "value" in field ? field.value : field.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () {
        field.select && field.select();
      });
    } else if (field.select) {
      field.select();
      try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
    }
  }
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { copy(b); });
  });
})();
