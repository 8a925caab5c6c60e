// The dashboard's live part: follows the event stream and keeps the server's
// rows up to date with the cells dashboard_view.js describes, from the same
// column table (<body data-columns>). Only textContent and createElement
// touch job data: never innerHTML.
(() => {
  const view = dashboardView;
  const body = document.body;
  const base = body.dataset.base;
  const historyLimit = Number(body.dataset.history);
  const table = JSON.parse(body.dataset.columns);
  const clockOffset = Number(body.dataset.now) - Date.now();
  const now = () => Date.now() + clockOffset;
  const rows = new Map();
  for (const tr of document.querySelectorAll("tr[data-job]")) rows.set(tr.dataset.job, tr);
  const targetRows = new Map();
  for (const tr of document.querySelectorAll("tr[data-target]")) targetRows.set(tr.dataset.target, tr);

  const el = (tag, props, text) => {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    if (text !== undefined) e.textContent = text;
    return e;
  };
  // A node of dashboard_view.js as a DOM node.
  const build = (node) => {
    if (typeof node === "string") return document.createTextNode(node);
    const e = el(node.tag, node.props, node.text);
    Object.assign(e.dataset, node.data || {});
    if (node.children) e.append(...node.children.map(build));
    return e;
  };

  function fillCell(td, cell) {
    if ("progress" in cell) {
      // The bar stays the same element, so its width animates.
      let bar = td.querySelector("progress");
      let pct = td.querySelector(".pct");
      if (!bar || !pct) {
        bar = el("progress", { max: 100 });
        pct = el("span", { className: "pct" });
        td.replaceChildren(bar, pct);
      }
      if (cell.progress === null) bar.removeAttribute("value");
      else bar.value = cell.progress;
      pct.textContent = cell.text;
    } else if (cell.nodes) {
      td.replaceChildren(...cell.nodes.map(build));
    } else {
      td.textContent = cell.text;
    }
    if ("title" in cell) td.title = cell.title;
    if ("bad" in cell) td.classList.toggle("bad", cell.bad);
    Object.assign(td.dataset, cell.data || {});
  }

  function tickCell(td) {
    td.textContent = td.dataset.field === "elapsed"
      ? view.elapsedText(Number(td.dataset.from), now())
      : view.countdownText(Number(td.dataset.until), now());
  }
  setInterval(() => {
    for (const td of document.querySelectorAll("td[data-field=elapsed],td[data-field=left]")) tickCell(td);
  }, 1000);

  function refreshSection(id) {
    const section = document.getElementById(id);
    const n = section.querySelector("tbody").rows.length;
    section.querySelector("h2 .count").textContent = n;
    section.querySelector("table").hidden = n === 0;
    section.querySelector(".empty").hidden = n > 0;
  }

  function place(tr, section, job) {
    const tbody = document.querySelector("#" + section + " tbody");
    if (section === "history") {
      tbody.prepend(tr);
      while (tbody.rows.length > historyLimit) {
        const last = tbody.rows[tbody.rows.length - 1];
        rows.delete(last.dataset.job);
        last.remove();
      }
      return;
    }
    const after = [...tbody.rows].find((row) => Number(row.dataset.job) < job.id);
    tbody.insertBefore(tr, after || null);
  }

  function updateTarget(job) {
    const tr = targetRows.get(job.target);
    if (!tr || !view.isFinal(job.state)) return;
    const td = tr.querySelector("td[data-field=last]");
    if (Number(td.dataset.job || 0) > job.id) return;
    td.dataset.job = job.id;
    td.replaceChildren(...view.lastResultNodes(job).map(build));
  }

  function update(job) {
    const key = String(job.id);
    const section = view.sectionOf(job.state);
    const cells = view.rowOf(table, section, job, now());
    let tr = rows.get(key);
    const from = tr && tr.dataset.section;
    if (!tr || from !== section) {
      if (tr) tr.remove();
      tr = el("tr");
      tr.dataset.job = key;
      tr.dataset.section = section;
      for (const { field } of cells) {
        const td = el("td");
        td.dataset.field = field;
        tr.append(td);
      }
      rows.set(key, tr);
      place(tr, section, job);
    }
    cells.forEach(({ cell }, i) => fillCell(tr.cells[i], cell));
    tr.classList.remove("flash");
    void tr.offsetWidth; // restarts the animation
    tr.classList.add("flash");
    if (from && from !== section) refreshSection(from);
    refreshSection(section);
    updateTarget(job);
  }

  const live = document.getElementById("live");
  const setLive = (text, cls) => {
    live.textContent = text;
    live.className = "live " + cls;
  };
  // EventSource reconnects by itself and sends Last-Event-ID, which the
  // server prefers to ?since: no change is lost across reconnects.
  const events = new EventSource(base + "/events?since=" + encodeURIComponent(body.dataset.since));
  events.addEventListener("open", () => setLive("live", "on"));
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) setLive("disconnected: reload the page", "off");
    else setLive("reconnecting\u2026", "retry");
  });
  events.addEventListener("job", (event) => {
    let job;
    try {
      job = JSON.parse(event.data);
    } catch (e) {
      console.warn("mod_deploy: ignoring an event that is not a job", e);
      return;
    }
    if (view.isShownJob(table, job)) update(job);
  });

  // Forms still work without this; with it the answer shows inline.
  const notice = document.getElementById("notice");
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.kind) return;
    event.preventDefault();
    const out = form.querySelector(".result") || notice;
    const data = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value !== "") data.append(name, value);
    const button = form.querySelector("button");
    button.disabled = true;
    out.className = "result";
    out.textContent = form.dataset.kind === "deploy" ? "submitting\u2026" : "";
    try {
      const response = await fetch(form.action, {
        method: "POST", body: data, headers: { Accept: "application/json" },
      });
      let answer = null;
      try {
        answer = await response.json();
      } catch (e) {
        answer = null;
      }
      if (response.ok && answer && typeof answer.id === "number") {
        out.className = "result ok";
        out.dataset.job = answer.id;
        out.textContent = form.dataset.kind === "deploy"
          ? "job #" + answer.id + (answer.coalesced ? " joined (coalesced)" : " accepted")
          : "cancel of job #" + answer.id + " requested";
        // The event stream has the newest state; this only fills the gap
        // when the job is not on the page yet.
        if (!rows.has(String(answer.id)) && view.isShownJob(table, answer)) update(answer);
      } else {
        out.className = "result err";
        out.textContent = (answer && answer.message) || "HTTP " + response.status;
      }
    } catch (e) {
      out.className = "result err";
      out.textContent = "request failed: " + e.message;
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
})();
