// Schedule set-up: the time-off form shows the provider or location choice only for the kind
// that needs it. The page works without this script (the server ignores the other choice).
"use strict";

(() => {
  const form = document.querySelector(".setup-exception-form");
  if (!form) return;
  const show = () => {
    const chosen = form.querySelector('input[name="kind"]:checked');
    const kind = chosen ? chosen.value : "";
    for (const part of form.querySelectorAll("[data-exception-for]")) {
      part.hidden = part.dataset.exceptionFor !== kind;
    }
  };
  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") show();
  });
  show();
})();
