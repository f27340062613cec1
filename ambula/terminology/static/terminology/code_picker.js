// The ICD-10-CM code picker: a text field that searches the code table as the user types
// (htmx fetches the matches) and fills itself with the code chosen by arrow keys and Enter,
// or by a click. Without this script the field still takes a code typed in full.
"use strict";

(() => {
  for (const picker of document.querySelectorAll("[data-code-picker]")) {
    const input = picker.querySelector("input");
    const results = picker.querySelector("[data-code-picker-results]");
    const choice = picker.querySelector("[data-code-picker-choice]");
    let active = -1;

    const options = () => [...results.querySelectorAll("[role=option]")];

    const highlight = (index) => {
      const all = options();
      active = index;
      all.forEach((option, position) => {
        const selected = position === index;
        option.setAttribute("aria-selected", String(selected));
        option.classList.toggle("is-active", selected);
        if (selected) option.scrollIntoView({ block: "nearest" });
      });
      if (index >= 0) input.setAttribute("aria-activedescendant", all[index].id);
      else input.removeAttribute("aria-activedescendant");
    };

    const close = () => {
      results.replaceChildren();
      input.setAttribute("aria-expanded", "false");
      highlight(-1);
    };

    const show = (text, category) => {
      choice.replaceChildren();
      if (!text) {
        choice.hidden = true;
        return;
      }
      choice.append(text);
      if (category) {
        const badge = document.createElement("span");
        badge.className = "code-picker-category";
        badge.textContent = picker.dataset.categoryLabel;
        choice.append(" ", badge);
      }
      choice.hidden = false;
    };

    const pick = (option) => {
      input.value = option.dataset.code;
      show(`${option.dataset.code} · ${option.dataset.description}`, "category" in option.dataset);
      close();
      input.focus();
    };

    // The field is named for the form ("code"); the search endpoint reads "q".
    input.addEventListener("htmx:configRequest", (event) => {
      const query = input.value;
      delete event.detail.parameters[input.name];
      event.detail.parameters.q = query;
    });

    results.addEventListener("htmx:afterSwap", () => {
      if (document.activeElement !== input) return close(); // answered after the user moved on
      // Nothing is highlighted until the user moves down: Enter must never pick a code the
      // user did not look at (the first match for "asthma" is a family history code).
      input.setAttribute("aria-expanded", String(options().length > 0));
      highlight(-1);
    });

    input.addEventListener("input", () => show(""));

    input.addEventListener("keydown", (event) => {
      const all = options();
      if (event.key === "ArrowDown" && all.length) {
        event.preventDefault();
        highlight(Math.min(active + 1, all.length - 1));
      } else if (event.key === "ArrowUp" && all.length) {
        event.preventDefault();
        highlight(Math.max(active - 1, 0));
      } else if (event.key === "Enter" && active >= 0) {
        event.preventDefault(); // choose the code; do not submit the form yet
        pick(all[active]);
      } else if (event.key === "Escape" && results.childElementCount) {
        event.preventDefault();
        close();
      }
    });

    // Keep the focus in the field while the mouse picks, so the list stays usable.
    results.addEventListener("mousedown", (event) => event.preventDefault());
    results.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) pick(option);
    });
    results.addEventListener("mousemove", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) highlight(options().indexOf(option));
    });

    input.addEventListener("blur", close);
  }
})();
