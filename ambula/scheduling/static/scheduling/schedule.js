// The schedule pages: the slot picker's keyboard, the board's quiet refresh, print.
// Every page works without this script; it only makes them quicker to use.
"use strict";

(() => {
  // Slot picker: ↑/↓ move between the times (across days), Home/End jump; Enter picks (a link).
  document.addEventListener("keydown", (event) => {
    const picker = event.target.closest && event.target.closest("[data-slot-picker]");
    if (!picker) return;
    const slots = [...picker.querySelectorAll("[data-slot]")];
    const index = slots.indexOf(document.activeElement);
    let next = null;
    if (event.key === "ArrowDown") next = slots[Math.min(index + 1, slots.length - 1)];
    else if (event.key === "ArrowUp") next = slots[Math.max(index - 1, 0)];
    else if (event.key === "Home") next = slots[0];
    else if (event.key === "End") next = slots[slots.length - 1];
    if (!next) return;
    event.preventDefault();
    next.focus();
  });

  // From the search form, ↓ (outside a select) goes to the first time.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" || !event.target.closest || !event.target.closest("#slot-search")) return;
    if (event.target.tagName === "SELECT") return;
    const first = document.querySelector("#slot-picker [data-slot]");
    if (first) {
      event.preventDefault();
      first.focus();
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (!target) return;
    // A chosen slot: mark it and move to the confirm button, so Enter books it.
    if (target.id === "booking-confirm" || event.detail.elt.hasAttribute("data-slot")) {
      for (const slot of document.querySelectorAll("[data-slot][aria-current]")) slot.removeAttribute("aria-current");
      if (event.detail.elt.hasAttribute("data-slot")) event.detail.elt.setAttribute("aria-current", "true");
      const button = document.querySelector("#booking-confirm [data-confirm-button]");
      if (button) button.focus();
    }
  });

  // Slot links swap the confirm panel in place; keep the picker's own link active too.
  document.addEventListener("htmx:afterSettle", (event) => {
    const confirm = document.getElementById("booking-confirm");
    if (event.detail.elt && event.detail.elt.hasAttribute && event.detail.elt.hasAttribute("data-slot") && confirm) {
      const button = confirm.querySelector("[data-confirm-button]");
      if (button) button.focus();
    }
  });

  // The day board refreshes itself, but not while someone is typing a reason or has a form open.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const board = event.detail.elt;
    if (!board || board.id !== "day-board") return;
    const active = document.activeElement;
    const typing = active && board.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
    if (typing || board.querySelector("details[open]")) event.preventDefault();
  });

  // Location and date choices apply at once.
  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("[data-autosubmit]")) event.target.form.requestSubmit();
  });

  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("[data-print]")) window.print();
  });
})();
