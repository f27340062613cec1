// The downtime kit's own script, inlined into the kit: it opens the sealed data with the
// passphrase (WebCrypto: PBKDF2-SHA256, then AES-256-GCM; then gzip) and builds the page.
// The data is only ever put in with textContent, never parsed as HTML.
"use strict";

(() => {
  const byId = (id) => document.getElementById(id);
  const envelope = JSON.parse(byId("kit-envelope").textContent);
  const form = byId("kit-unlock");
  const field = byId("kit-passphrase");
  const openButton = byId("kit-open");
  const content = byId("kit-content");
  byId("kit-no-script").hidden = true;

  class WrongPassphrase extends Error {}

  const bytes = (base64) => Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));

  async function openKit(passphrase) {
    if (!window.crypto || !crypto.subtle || typeof DecompressionStream === "undefined") {
      throw new Error("unsupported");
    }
    const encoder = new TextEncoder();
    const material = await crypto.subtle.importKey(
      "raw", encoder.encode(passphrase.normalize("NFC")), "PBKDF2", false, ["deriveKey"],
    );
    const key = await crypto.subtle.deriveKey(
      { name: "PBKDF2", salt: bytes(envelope.salt), iterations: envelope.iterations, hash: "SHA-256" },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["decrypt"],
    );
    let compressed;
    try {
      compressed = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: bytes(envelope.nonce), additionalData: encoder.encode(envelope.format) },
        key,
        bytes(envelope.ciphertext),
      );
    } catch (error) {
      // GCM's tag does not match: the wrong passphrase (or a damaged file).
      throw new WrongPassphrase();
    }
    const stream = new Blob([compressed]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  // --- Building the page: every text through textContent ------------------------------------

  function element(tag, options = {}, children = []) {
    const node = document.createElement(tag);
    if (options.className) node.className = options.className;
    if (options.text !== undefined) node.textContent = options.text;
    for (const [name, value] of Object.entries(options.attributes || {})) node.setAttribute(name, value);
    for (const child of children) if (child) node.append(child);
    return node;
  }

  const badge = (text, kind) => element("span", { className: `kit-badge ${kind ? `kit-badge-${kind}` : ""}`, text });

  function cell(label, text, className) {
    return element("td", { text, className, attributes: { "data-label": label } });
  }

  function table(headings, rows) {
    const head = element("thead", {}, [
      element("tr", {}, headings.map((heading) => element("th", { text: heading, attributes: { scope: "col" } }))),
    ]);
    return element("table", {}, [head, element("tbody", {}, rows)]);
  }

  function appointmentRow(labels, appointment, patients) {
    const patient = patients.get(appointment.patient);
    // One wrapper, so that on a phone the name and its flags share the cell's value column.
    const name = element("span", {}, [
      element("a", { text: patient.name, attributes: { href: `#${patient.key}` } }),
    ]);
    if (patient.allergies.state === "listed") name.append(badge(labels.allergies, "danger"));
    if (patient.interpreter) name.append(badge(labels.interpreter, "warning"));
    const who = element("td", { className: "kit-strong", attributes: { "data-label": labels.patient } }, [name]);
    const visit = appointment.overbooked ? `${appointment.type} (${labels.overbooked})` : appointment.type;
    return element("tr", {}, [
      cell(labels.time, `${appointment.starts}–${appointment.ends}`, "kit-nowrap"),
      who,
      cell(labels.date_of_birth, patient.date_of_birth, "kit-nowrap"),
      cell(labels.visit, visit),
      cell(labels.status, appointment.status),
    ]);
  }

  function daySection(labels, day, patients) {
    const section = element("section", { className: "kit-day", attributes: { id: `day-${day.date}` } }, [
      element("h2", { text: day.label }),
    ]);
    if (!day.locations.length) section.append(element("p", { className: "kit-empty", text: labels.nothing_booked_day }));
    for (const location of day.locations) {
      const place = element("section", { className: "kit-location" }, [
        element("h3", { text: location.name }),
        element("p", { className: "kit-muted", text: [location.address, location.phone].filter(Boolean).join(" · ") }),
      ]);
      for (const provider of location.providers) {
        const headings = [labels.time, labels.patient, labels.date_of_birth, labels.visit, labels.status];
        const rows = provider.appointments.map((appointment) => appointmentRow(labels, appointment, patients));
        place.append(element("div", { className: "kit-provider" }, [
          element("h4", { text: provider.name }),
          table(headings, rows),
        ]));
      }
      section.append(place);
    }
    return section;
  }

  function facts(pairs) {
    return element("dl", { className: "kit-facts" }, pairs
      .filter(([, value]) => value)
      .map(([term, value]) => element("div", {}, [element("dt", { text: term }), element("dd", { text: value })])));
  }

  function list(items) {
    return element("ul", {}, items.map((text) => element("li", { text })));
  }

  function block(title, body, className = "kit-block") {
    return element("div", { className }, [element("h4", { text: title }), body]);
  }

  function allergiesBlock(labels, allergies) {
    if (allergies.state === "none_known") {
      return block(labels.allergies, element("p", { text: labels.no_known_allergies }), "kit-block kit-allergies kit-allergies-none");
    }
    if (allergies.state === "not_recorded") {
      return block(labels.allergies, element("p", { text: labels.allergies_not_recorded }), "kit-block kit-allergies kit-allergies-ask");
    }
    const items = allergies.entries.map((allergy) =>
      [allergy.substance, allergy.reaction, allergy.severity].filter(Boolean).join(" · "));
    return block(labels.allergies, list(items), "kit-block kit-allergies");
  }

  function coverageBlock(labels, plans) {
    if (!plans.length) return block(labels.coverage, element("p", { text: labels.no_coverage }));
    const headings = [labels.coverage, labels.plan, labels.member_id, labels.group, labels.subscriber, labels.copay];
    const rows = plans.map((plan) => element("tr", {}, [
      cell(labels.coverage, `${plan.priority}: ${plan.payer}${plan.payer_id ? ` (${labels.payer_id} ${plan.payer_id})` : ""}${plan.payer_phone ? ` · ${plan.payer_phone}` : ""}`),
      cell(labels.plan, plan.plan),
      cell(labels.member_id, plan.member_id, "kit-code"),
      cell(labels.group, plan.group),
      cell(labels.subscriber, plan.subscriber),
      cell(labels.copay, plan.copay, "kit-nowrap"),
    ]));
    return block(labels.coverage, table(headings, rows));
  }

  function summary(labels, patient) {
    const head = element("div", { className: "kit-summary-head" }, [
      element("h3", { text: patient.name }),
      element("span", { className: "kit-muted", text: `${labels.mrn} ${patient.mrn}` }),
    ]);
    if (patient.restricted) head.append(badge(labels.restricted, "warning"));
    if (patient.deceased) head.append(badge(labels.deceased));
    const phones = patient.phones.map((phone) => `${phone.label} ${phone.number}`).join(" · ");
    const contacts = patient.emergency_contacts.map((contact) =>
      [`${contact.name} (${contact.relationship})`, contact.phone].filter(Boolean).join(" · "));
    const language = patient.interpreter
      ? `${patient.language || "?"} · ${labels.interpreter}`
      : patient.language;
    const problems = patient.problems.map((problem) => `${problem.code} ${problem.description}`);
    const medications = patient.medications.map((medication) =>
      [medication.name, medication.dose, medication.route, medication.frequency].filter(Boolean).join(" · "));
    return element("article", { className: "kit-card kit-summary", attributes: { id: patient.key } }, [
      head,
      facts([
        [labels.date_of_birth, `${patient.date_of_birth} (${labels.age} ${patient.age})`],
        [labels.sex, patient.sex],
        [labels.preferred_name, patient.preferred_name],
        [labels.pronouns, patient.pronouns],
        [labels.phones, phones],
        [labels.email, patient.email],
        [labels.address, patient.address],
        [labels.language, language],
        [labels.emergency_contacts, contacts.join("; ") || labels.none_recorded],
      ]),
      element("div", { className: "kit-clinical" }, [
        allergiesBlock(labels, patient.allergies),
        block(labels.problems, problems.length ? list(problems) : element("p", { text: labels.none_recorded })),
        block(labels.medications, medications.length ? list(medications) : element("p", { text: labels.none_recorded })),
      ]),
      coverageBlock(labels, patient.coverage),
      block(labels.visits, list(patient.visits || [])),
      element("a", { className: "kit-back", text: labels.back_to_schedule, attributes: { href: "#kit-schedule" } }),
    ]);
  }

  function render(data) {
    const labels = data.labels;
    const patients = new Map(data.patients.map((patient) => [patient.key, patient]));
    const booked = data.days.some((day) => day.locations.length);
    const nav = element("ul", { className: "kit-nav", attributes: { "aria-label": labels.schedule } },
      data.days.map((day) => element("li", {}, [element("a", { text: day.label, attributes: { href: `#day-${day.date}` } })])));
    if (data.patients.length) {
      nav.append(element("li", {}, [element("a", { text: labels.summaries, attributes: { href: "#kit-summaries" } })]));
    }
    const heading = element("h2", {
      className: "kit-section-title", text: labels.schedule, attributes: { id: "kit-schedule", tabindex: "-1" },
    });
    if (booked) {
      content.replaceChildren(heading, nav, element("div", {}, data.days.map((day) => daySection(labels, day, patients))));
    } else {
      content.replaceChildren(heading, element("div", { className: "kit-card kit-empty-card" }, [
        element("p", { text: labels.nothing_booked }),
      ]));
    }
    if (data.patients.length) {
      content.append(
        element("h2", { className: "kit-section-title kit-section-title-summaries", text: labels.summaries, attributes: { id: "kit-summaries" } }),
        element("div", { className: "kit-summaries" }, data.patients.map((patient) => summary(labels, patient))),
      );
    }
    form.hidden = true;
    content.hidden = false;
    byId("kit-actions").hidden = false;
    byId("kit-schedule").focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    byId("kit-wrong").hidden = true;
    byId("kit-unsupported").hidden = true;
    const label = openButton.textContent;
    openButton.disabled = true;
    openButton.textContent = openButton.dataset.busyLabel;
    try {
      render(await openKit(field.value));
      field.value = "";
    } catch (error) {
      const message = byId(error instanceof WrongPassphrase ? "kit-wrong" : "kit-unsupported");
      message.hidden = false;
      field.select();
    } finally {
      openButton.disabled = false;
      openButton.textContent = label;
    }
  });

  byId("kit-print").addEventListener("click", () => window.print());
  // Locking forgets everything shown: the page goes back to the file as it was written.
  byId("kit-lock").addEventListener("click", () => window.location.reload());
})();
