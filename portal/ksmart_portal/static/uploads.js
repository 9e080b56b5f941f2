// Progressive enhancement of document uploads: a chosen file larger than
// its document allows (data-max-bytes, from the service's definition) is
// named beside its field at once, and the form is not sent while one is,
// rather than after minutes of uploading on a slow connection. The words
// are the page's own (a hidden message the server rendered); without this
// script the portal and the gateway still refuse such a file.
(function () {
  "use strict";
  var inputs = document.querySelectorAll("input[type=file][data-max-bytes]");
  if (!inputs.length) {
    return;
  }
  function tooLarge(input) {
    var limit = Number(input.getAttribute("data-max-bytes"));
    var files = input.files || [];
    for (var i = 0; i < files.length; i += 1) {
      if (limit && files[i].size > limit) {
        return true;
      }
    }
    return false;
  }
  function show(input) {
    var message = document.getElementById(input.id + "-too-large");
    var over = tooLarge(input);
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== message.id;
    });
    // A problem the server named stays marked until the page is sent again.
    var invalid = over || input.hasAttribute("data-server-invalid");
    if (over) {
      described.push(message.id);
    }
    if (invalid) {
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
    input.setAttribute("aria-describedby", described.join(" "));
    message.hidden = !over;
    input.closest(".form-group").classList.toggle("form-group--error", invalid);
    return over;
  }
  for (var i = 0; i < inputs.length; i += 1) {
    if (inputs[i].getAttribute("aria-invalid") === "true") {
      inputs[i].setAttribute("data-server-invalid", "");
    }
    inputs[i].addEventListener("change", function (event) {
      show(event.target);
    });
  }
  document.addEventListener("submit", function (event) {
    for (var i = 0; i < inputs.length; i += 1) {
      if (event.target.contains(inputs[i]) && show(inputs[i])) {
        event.preventDefault();
        inputs[i].focus();
        return;
      }
    }
  });
})();
