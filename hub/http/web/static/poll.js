// Live parts of a page, without a framework or a build step: an element with data-poll="URL" is replaced,
// every data-poll-s seconds, by the HTML fragment that URL answers (the server renders it; the figures are
// the server's, never recounted here), until a fragment arrives with data-done="true". A failed request is
// tried again, more slowly; a session that ended (the answer is the sign-in page) stops it. Without
// scripts, the page's own reload link does the same.
(function () {
  "use strict";
  function schedule(el, seconds) {
    window.setTimeout(function () { refresh(el, seconds); }, seconds * 1000);
  }
  function refresh(el, seconds) {
    fetch(el.getAttribute("data-poll"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) {
        if (answer.redirected) { return null; }  // signed out: the answer is another page
        if (!answer.ok) { throw new Error("HTTP " + answer.status); }
        return answer.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var box = document.createElement("div");
        box.innerHTML = html;
        var fresh = box.firstElementChild;
        if (!fresh || !fresh.hasAttribute("data-poll")) { throw new Error("not a fragment"); }
        el.replaceWith(fresh);
        start(fresh);
      })
      .catch(function () { schedule(el, Math.min(seconds * 2, 60)); });
  }
  function start(el) {
    if (el.getAttribute("data-done") === "true") { return; }
    schedule(el, Math.max(1, Number(el.getAttribute("data-poll-s")) || 5));
  }
  document.querySelectorAll("[data-poll]").forEach(start);
})();
