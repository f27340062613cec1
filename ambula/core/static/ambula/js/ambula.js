// Small behaviours that make the pages nicer; every page works without them.
"use strict";

document.addEventListener("click", (event) => {
  // Close an open menu when the user clicks anywhere outside it.
  for (const menu of document.querySelectorAll("details.user-menu[open]")) {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of document.querySelectorAll("details.user-menu[open]")) {
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
  }
});

// Idle sign-out: warn a minute before the server ends an idle session, offer to stay.
// The server enforces the limit whatever happens here; this only spares the user a surprise.
(() => {
  const body = document.body;
  const statusUrl = body.dataset.sessionStatusUrl;
  if (!statusUrl) return;
  const dialog = document.getElementById("session-timeout");
  const countdown = dialog.querySelector("[data-countdown]");
  const warnBeforeSeconds = 60;
  let timer = null;
  let ticker = null;

  const schedule = (secondsLeft) => {
    clearTimeout(timer);
    timer = setTimeout(check, Math.max(1, secondsLeft - warnBeforeSeconds) * 1000);
  };

  const signedOut = () => window.location.reload(); // the server shows the sign-in page

  const warn = (secondsLeft) => {
    let remaining = secondsLeft;
    countdown.textContent = remaining;
    if (!dialog.open) dialog.showModal();
    clearInterval(ticker);
    ticker = setInterval(() => {
      remaining -= 1;
      countdown.textContent = Math.max(remaining, 0);
      if (remaining <= 0) {
        clearInterval(ticker);
        signedOut();
      }
    }, 1000);
  };

  async function check() {
    // Another tab may have kept the session alive: ask the server before warning.
    // redirect "manual": a timed-out session answers with a redirect to the sign-in page,
    // whose "you were signed out" message must wait for the reload rather than this fetch.
    const response = await fetch(statusUrl, { credentials: "same-origin", redirect: "manual" });
    if (!response.ok) return signedOut();
    const { seconds_left: secondsLeft } = await response.json();
    if (secondsLeft <= 0) return signedOut();
    if (secondsLeft > warnBeforeSeconds) return schedule(secondsLeft);
    warn(secondsLeft);
  }

  dialog.querySelector("[data-stay-signed-in]").addEventListener("click", async () => {
    const response = await fetch(body.dataset.sessionKeepaliveUrl, {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      headers: { "X-CSRFToken": body.dataset.csrfToken },
    });
    if (!response.ok) return signedOut();
    clearInterval(ticker);
    dialog.close();
    schedule((await response.json()).seconds_left);
  });

  document.addEventListener("htmx:afterRequest", () => schedule(Number(body.dataset.idleMinutes) * 60));
  schedule(Number(body.dataset.idleMinutes) * 60);
})();

// The top bar's quick search: arrow keys move between the results, Escape closes them.
(() => {
  const input = document.getElementById("quick-search");
  const results = document.getElementById("quick-search-results");
  if (!input || !results) return;
  const links = () => [...results.querySelectorAll("a")];
  const close = () => { results.replaceChildren(); };
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && links().length) {
      event.preventDefault();
      links()[0].focus();
    } else if (event.key === "Escape") {
      close();
    }
  });
  results.addEventListener("keydown", (event) => {
    const all = links();
    const index = all.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && index < all.length - 1) {
      event.preventDefault();
      all[index + 1].focus();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      (index > 0 ? all[index - 1] : input).focus();
    } else if (event.key === "Escape") {
      close();
      input.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!input.form.contains(event.target)) close();
  });
})();
