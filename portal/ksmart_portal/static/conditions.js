// Progressive enhancement of the application form: a question or document
// that applies only for some answer to another question is hidden while
// that answer is not given. Without this script every one is shown, with
// its hint saying when it applies, and the portal ignores the rest.
(function () {
  "use strict";
  var groups = document.querySelectorAll("[data-condition-field]");
  if (!groups.length) {
    return;
  }
  function answer(name) {
    var inputs = document.getElementsByName(name);
    for (var i = 0; i < inputs.length; i += 1) {
      var input = inputs[i];
      if ((input.type === "radio" || input.type === "checkbox")) {
        if (input.checked) {
          return input.value;
        }
      } else {
        return input.value;
      }
    }
    return "";
  }
  function update() {
    for (var i = 0; i < groups.length; i += 1) {
      var group = groups[i];
      var values = group.getAttribute("data-condition-values").split("|");
      group.hidden = values.indexOf(answer(group.getAttribute("data-condition-field"))) === -1;
    }
  }
  document.addEventListener("change", update);
  update();
})();
