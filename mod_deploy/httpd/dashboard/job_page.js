// The job page's live part (httpd/deploy_job_page.cc renders the page; this
// runs after dashboard_view.js, in the same nonce'd script). It follows
// BASE/jobs/ID/events from where the page's copy ends (<body data-since>),
// updates the facts at every `job` event and appends every `log` event to
// the log, keeping at most the newest <body data-log-limit> bytes of it.
// Only textContent and createElement touch job data: never innerHTML.
(() => {
  const view = dashboardView;
  const body = document.body;
  const base = body.dataset.base;
  const jobId = body.dataset.job;
  const logLimit = Number(body.dataset.logLimit);
  const clockOffset = Number(body.dataset.now) - Date.now();
  const now = () => Date.now() + clockOffset;
  const millis = (iso) => (typeof iso === "string" ? Date.parse(iso) : NaN);
  const field = (name) => document.querySelector("dd[data-field=" + name + "]");

  const live = document.getElementById("live");
  const setLive = (text, cls) => {
    live.textContent = text;
    live.className = "live " + cls;
  };

  // The log: one text node per flush (below), so that the oldest can leave.
  const pre = document.getElementById("log");
  const cut = document.getElementById("log-cut");
  const cutText = cut.querySelector(".text");
  const empty = document.getElementById("log-empty");
  const encoder = new TextEncoder();
  let skipped = Number(body.dataset.logFrom); // bytes of the log before the first shown
  const chunks = [];
  let shown = 0;
  if (pre.firstChild) {
    shown = encoder.encode(pre.textContent).length;
    chunks.push({ node: pre.firstChild, bytes: shown });
  }
  // Output that came since the last flush: appended together at most ten
  // times a second, so that a fast job costs one layout per flush, not one
  // per event.
  let pending = [];
  function flushLog() {
    const text = pending.join("");
    pending = [];
    const follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24;
    const bytes = encoder.encode(text).length;
    const node = document.createTextNode(text);
    pre.append(node);
    chunks.push({ node, bytes });
    shown += bytes;
    // The oldest chunks go while what is left is still too much; then the
    // oldest lines of the oldest chunk, up to a line's start.
    while (chunks.length > 1 && shown - chunks[0].bytes >= logLimit) {
      const oldest = chunks.shift();
      oldest.node.remove();
      shown -= oldest.bytes;
      skipped += oldest.bytes;
    }
    if (shown > logLimit) {
      const oldest = chunks[0];
      const data = encoder.encode(oldest.node.data);
      let from = shown - logLimit;
      while (from < data.length && data[from - 1] !== 10) from++; // just after a newline
      oldest.node.data = new TextDecoder().decode(data.subarray(from));
      oldest.bytes -= from;
      shown -= from;
      skipped += from;
    }
    cut.hidden = skipped === 0;
    cutText.textContent = "The first " + skipped + " bytes of the log are not shown here.";
    empty.hidden = true;
    if (follow) pre.scrollTop = pre.scrollHeight;
  }
  function appendLog(text) {
    if (!pending.length) setTimeout(flushLog, 100);
    pending.push(text);
  }

  // NAME=VALUE each (params, outputs), or "none", as the server renders them.
  function showPairs(name, pairs) {
    const nodes = view.cellOf({ kind: "params", key: name }, { [name]: pairs }, now()).nodes.map((node) => {
      const code = document.createElement("code");
      code.textContent = node.text;
      return code;
    });
    if (!nodes.length) {
      const none = document.createElement("span");
      none.className = "sub";
      none.textContent = "none";
      nodes.push(none);
    }
    field(name).replaceChildren(...nodes);
  }

  // The stage timeline, row by row as the server renders it.
  const stageList = document.getElementById("stage-list");
  function showStages(job) {
    const rows = view.stageRows(job, now()).map((row) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = row.name;
      const started = document.createElement("span");
      started.className = "sub";
      started.title = row.title;
      started.textContent = row.started;
      const took = document.createElement("span");
      took.className = "took";
      if (row.from !== null) took.dataset.from = String(row.from);
      took.textContent = row.took;
      li.append(name, started, took);
      return li;
    });
    stageList.replaceChildren(...rows);
    document.getElementById("stages-empty").hidden = rows.length > 0;
  }

  const cancelForm = document.getElementById("cancel");
  let lastJob = null;
  function showJob(job) {
    lastJob = job;
    body.dataset.state = job.state;
    const badge = view.cellOf({ kind: "badge", key: "state" }, job, now()).nodes[0];
    const span = document.createElement("span");
    span.className = badge.props.className;
    span.textContent = badge.text;
    field("state").replaceChildren(span);
    const progress = view.cellOf({ kind: "progress", key: "progress" }, job, now());
    const bar = field("progress").querySelector("progress");
    if (progress.progress === null) bar.removeAttribute("value");
    else bar.value = progress.progress;
    field("progress").querySelector(".pct").textContent = progress.text;
    field("stage").textContent = view.cellOf({ kind: "text", key: "stage" }, job, now()).text;
    showPairs("outputs", job.outputs || {});
    showStages(job);
    field("requests").textContent = String(job.requests);
    for (const [name, key] of [["submitted", "submitted_at"], ["started", "started_at"], ["finished", "finished_at"]]) {
      const cell = view.cellOf({ kind: "time", key }, job, now());
      field(name).textContent = cell.text;
      field(name).title = cell.title;
    }
    field("waited").textContent = job.started_at
      ? view.formatDuration(millis(job.started_at) - millis(job.submitted_at)) : view.DASH;
    const duration = field("duration");
    if (job.started_at && !job.finished_at) {
      duration.dataset.from = String(millis(job.started_at));
      duration.textContent = view.elapsedText(millis(job.started_at), now());
    } else {
      delete duration.dataset.from;
      duration.textContent = view.cellOf({ kind: "duration", key: "" }, job, now()).text;
    }
    const result = view.cellOf({ kind: "result", key: "" }, job, now());
    field("result").textContent = result.text;
    field("result").classList.toggle("bad", result.bad);
    if (view.isFinal(job.state)) cancelForm.hidden = true;
  }
  setInterval(() => {
    const duration = field("duration");
    if (duration.dataset.from) duration.textContent = view.elapsedText(Number(duration.dataset.from), now());
    for (const took of stageList.querySelectorAll(".took[data-from]"))
      took.textContent = view.elapsedText(Number(took.dataset.from), now());
  }, 1000);

  // A finished job's page is complete as the server rendered it.
  if (view.isFinal(body.dataset.state)) {
    setLive("finished", "off");
  } else {
    // EventSource reconnects by itself and sends Last-Event-ID, which the
    // server prefers to ?since: nothing is lost or repeated across reconnects.
    const url = base + "/jobs/" + jobId + "/events?since=" + encodeURIComponent(body.dataset.since);
    const events = new EventSource(url);
    events.addEventListener("open", () => setLive("live", "on"));
    events.addEventListener("error", () => {
      if (lastJob && view.isFinal(lastJob.state)) return;
      if (events.readyState === EventSource.CLOSED) setLive("disconnected: reload the page", "off");
      else setLive("reconnecting\u2026", "retry");
    });
    // A log event's data is whole lines, their last newline taken by the
    // event's framing.
    events.addEventListener("log", (event) => appendLog(event.data + "\n"));
    events.addEventListener("job", (event) => {
      const job = view.jobOfEvent(event.data);
      if (!job || String(job.id) !== jobId) return;
      showJob(job);
      if (view.isFinal(job.state)) {
        if (pending.length) flushLog();
        // The stream ends after the final state: no reconnect.
        events.close();
        setLive("finished", "off");
      }
    });
  }

  // The cancel form works without this; with it the answer shows inline.
  cancelForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = cancelForm.querySelector(".result");
    const button = cancelForm.querySelector("button");
    button.disabled = true;
    out.className = "result";
    out.textContent = "";
    const { job, error } = await view.postForJob(cancelForm.action, new URLSearchParams());
    out.className = job ? "result ok" : "result err";
    out.textContent = job ? "cancel requested" : error;
    button.disabled = false;
  });
})();
