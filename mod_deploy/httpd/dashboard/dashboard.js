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
  const leftThePage = new Set(); // ids of jobs that finished out of the history shown
  for (const tr of document.querySelectorAll("tr[data-job]")) rows.set(tr.dataset.job, tr);
  const targetRows = new Map();
  for (const tr of document.querySelectorAll("tr[data-target]")) targetRows.set(tr.dataset.target, tr);
  const targetNames = [...targetRows.keys()];
  // The history's view, as the server rendered it, and the older page's before.
  let historyView = {
    target: body.dataset.filterTarget || "",
    state: body.dataset.filterState || "",
    before: body.dataset.before ? Number(body.dataset.before) : null,
  };
  let olderCursor = body.dataset.older ? Number(body.dataset.older) : null;

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

  const historySection = document.getElementById("history");
  const filterForm = document.getElementById("history-filter");
  const olderLink = historySection.querySelector("a[data-page=older]");
  const newestLink = historySection.querySelector("a[data-page=newest]");
  const historyEmpty = historySection.querySelector(".empty");
  const emptyText = historyEmpty.textContent;
  // The controls and links of the history section for historyView.
  function showHistoryView() {
    filterForm.elements.target.value = historyView.target;
    filterForm.elements.state.value = historyView.state;
    const path = base + "/";
    newestLink.href = path + view.historySearch(historyView, null);
    newestLink.hidden = historyView.before === null;
    olderLink.href = path + view.historySearch(historyView, olderCursor);
    olderLink.hidden = olderCursor === null;
    const filtered = historyView.target || historyView.state || historyView.before !== null;
    historyEmpty.textContent = filtered ? "No finished job matches." : emptyText;
  }

  function place(tr, section, job) {
    const tbody = document.querySelector("#" + section + " tbody");
    if (section === "history") {
      tbody.prepend(tr);
      while (tbody.rows.length > historyLimit) {
        const last = tbody.rows[tbody.rows.length - 1];
        rows.delete(last.dataset.job);
        last.remove();
        olderCursor = view.cursorAfterTrim(olderCursor, Number(last.dataset.job));
      }
      showHistoryView();
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

  function newRow(key, section, cells) {
    const tr = el("tr");
    tr.dataset.job = key;
    tr.dataset.section = section;
    for (const { field } of cells) {
      const td = el("td");
      td.dataset.field = field;
      tr.append(td);
    }
    rows.set(key, tr);
    return tr;
  }

  function update(job) {
    const key = String(job.id);
    const section = view.sectionOf(job.state);
    const cells = view.rowOf(table, section, job, now());
    let tr = rows.get(key);
    const from = tr && tr.dataset.section;
    updateTarget(job);
    if (section === "history" && loading) finishedWhileLoading.push(job);
    if (section === "history" && view.historyChange(historyView, job, from === "history") === "none") {
      // Finished, but not into this page of the history: it only leaves its section.
      leftThePage.add(key);
      if (tr) {
        tr.remove();
        rows.delete(key);
        refreshSection(from);
      }
      return;
    }
    if (!tr || from !== section) {
      if (tr) tr.remove();
      tr = newRow(key, section, cells);
      place(tr, section, job);
    }
    cells.forEach(({ cell }, i) => fillCell(tr.cells[i], cell));
    tr.classList.remove("flash");
    void tr.offsetWidth; // restarts the animation
    tr.classList.add("flash");
    if (from && from !== section) refreshSection(from);
    refreshSection(section);
  }

  // Reads a page of the history with GET BASE/jobs and shows it in place of
  // the rows shown. Unfinished jobs come too when no state is chosen: they
  // are skipped, reading on (a bounded number of times) until the page is full.
  let loading = 0; // pages being read
  let ticketOfLast = 0;
  let finishedWhileLoading = []; // finished jobs of events that came while a page was read
  async function loadHistory(next, push) {
    const ticket = ++ticketOfLast;
    loading++;
    try {
      await readHistory(next, push, ticket);
    } finally {
      loading--;
    }
    if (loading) return;
    // The pages read may predate these: they apply to the view shown as events do.
    const replay = finishedWhileLoading;
    finishedWhileLoading = [];
    for (const job of replay) update(job);
  }
  async function readHistory(next, push, ticket) {
    const found = [];
    let before = next.before;
    let more = false;
    let last = null;
    for (let round = 0; round < 10; round++) {
      const limit = historyLimit + 1;
      const response = await fetch(base + "/jobs?" + view.jobsQuery(next, before, limit), {
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error("GET " + base + "/jobs: HTTP " + response.status);
      const jobs = await response.json();
      if (!Array.isArray(jobs)) throw new Error("GET " + base + "/jobs: not a list");
      found.push(...jobs);
      more = jobs.length === limit;
      if (jobs.length) last = jobs[jobs.length - 1].id;
      if (!more || found.filter((job) => view.matchesHistory(next, job)).length > historyLimit) break;
      before = last;
    }
    if (ticket !== ticketOfLast) return; // a later choice won
    const page = view.pageOf(next, found, historyLimit, more, last);
    const tbody = historySection.querySelector("tbody");
    for (const tr of [...tbody.rows]) {
      rows.delete(tr.dataset.job);
      tr.remove();
    }
    for (const job of page.jobs) {
      if (!view.isShownJob(table, job) || rows.has(String(job.id))) continue;
      const cells = view.rowOf(table, "history", job, now());
      const tr = newRow(String(job.id), "history", cells);
      cells.forEach(({ cell }, i) => fillCell(tr.cells[i], cell));
      tbody.append(tr);
    }
    historyView = next;
    olderCursor = page.older;
    showHistoryView();
    refreshSection("history");
    const url = base + "/" + view.historySearch(next, next.before);
    if (push) history.pushState(null, "", url);
  }

  function showHistory(next, push) {
    loadHistory(next, push).catch((e) => {
      const out = document.getElementById("notice");
      out.className = "result err";
      out.textContent = "the history could not be read: " + e.message;
    });
  }

  historySection.addEventListener("click", (event) => {
    const link = event.target instanceof Element && event.target.closest("a[data-page]");
    if (!link) return;
    event.preventDefault();
    const before = link.dataset.page === "older" ? olderCursor : null;
    showHistory(Object.assign({}, historyView, { before }), true);
  });
  const chooseFilter = (event) => {
    event.preventDefault();
    showHistory({
      target: filterForm.elements.target.value,
      state: filterForm.elements.state.value,
      before: null,
    }, true);
  };
  filterForm.addEventListener("submit", chooseFilter);
  filterForm.addEventListener("change", chooseFilter);
  // Back and forward between the pages and filters this page showed.
  window.addEventListener("popstate", () => {
    showHistory(view.parseHistoryView(location.search, targetNames), false);
  });

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
    const job = view.jobOfEvent(event.data);
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
    const { job: answer, error } = await view.postForJob(form.action, data);
    if (answer) {
      out.className = "result ok";
      out.dataset.job = answer.id;
      out.textContent = form.dataset.kind === "deploy"
        ? "job #" + answer.id + (answer.coalesced ? " joined (coalesced)" : " accepted")
        : "cancel of job #" + answer.id + " requested";
      // The event stream has the newest state; this only fills the gap
      // when the job is not on the page yet.
      const key = String(answer.id);
      if (!rows.has(key) && !leftThePage.has(key) && view.isShownJob(table, answer)) update(answer);
    } else {
      out.className = "result err";
      out.textContent = error;
    }
    if (button.isConnected) button.disabled = false;
  });
})();
