// A page that is meant to be printed (the counter's acknowledgement): its
// Print button, hidden until this script shows it, opens the browser's
// print dialog. Without JavaScript the page says how to print instead.
(function () {
  "use strict";
  var button = document.getElementById("print-button");
  if (!button) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    window.print();
  });
})();
