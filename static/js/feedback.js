// Follows feedback generation on the results page: polls the status API, shows the current step,
// and reloads the page once the feedback is ready or has failed. No inline script (strict CSP).
(function () {
  "use strict";
  var box = document.querySelector("[data-feedback-status-url]");
  if (!box) {
    return;
  }
  var url = box.getAttribute("data-feedback-status-url");
  var message = box.querySelector("[data-feedback-message]");
  var delayMs = 1500;
  var maxDelayMs = 10000;

  function schedule() {
    window.setTimeout(poll, delayMs);
    delayMs = Math.min(Math.round(delayMs * 1.3), maxDelayMs);
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        if (body.done) {
          window.location.reload();
          return;
        }
        if (message && message.textContent !== body.message) {
          message.textContent = body.message;
        }
        schedule();
      })
      .catch(function () {
        // A dropped connection or a restart: keep trying, more slowly.
        schedule();
      });
  }

  schedule();
})();
