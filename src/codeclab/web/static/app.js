/* codeclab dashboard: charts (uPlot), synchronised players, wipe, frame tool, live updates.
   No inline scripts (the pages' Content-Security-Policy forbids them): everything hangs off
   data-* attributes. Data for charts comes from <script type="application/json"> blocks or
   from the JSON API. */
(function () {
  "use strict";

  var COLORS = ["#4f46e5", "#dc2626", "#059669", "#d97706", "#0891b2", "#7c3aed", "#db2777", "#65a30d"];
  var BASELINE_COLORS = { x264: "#64748b", x265: "#0f172a", svtav1: "#a16207" };

  function $(root, selector) { return root.querySelector(selector); }
  function $all(root, selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }
  function jsonBlock(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function fmt(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }
  function chartWidth(el) { return Math.max(280, el.clientWidth - 12); }
  function clearEmpty(el) {
    var empty = $(el, ".chart-empty");
    if (empty) { empty.remove(); }
  }
  function mount(el, opts, data) {
    clearEmpty(el);
    if (el._plot) { el._plot.destroy(); }
    opts.width = chartWidth(el);
    opts.height = opts.height || 280;
    el._plot = new uPlot(opts, data, el);
    return el._plot;
  }
  window.addEventListener("resize", function () {
    $all(document, "[data-chart]").forEach(function (el) {
      if (el._plot) { el._plot.setSize({ width: chartWidth(el), height: el._plot.height }); }
    });
  });

  /* ---- charts ---------------------------------------------------------------------------- */

  function progressChart(el) {
    fetch(el.dataset.src, { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status + " " + r.statusText); } return r.json(); })
      .then(function (p) {
        if (!p.iteration.length) { return; }
        var achievedPsnr = p.psnr_y.map(function (v, i) { return p.achieved[i] ? v : null; });
        var otherPsnr = p.psnr_y.map(function (v, i) { return p.achieved[i] ? null : v; });
        mount(el, {
          scales: { x: { time: false }, db: {}, mbps: {} },
          axes: [
            { label: "iteration (completed experiments, in order)" },
            { scale: "db", label: "PSNR-Y dB" },
            { scale: "mbps", label: "Mbps", side: 1, grid: { show: false } },
          ],
          series: [
            { label: "iteration" },
            { label: "PSNR-Y (achieved)", scale: "db", stroke: "#059669", width: 0, points: { show: true, size: 5, fill: "#059669" } },
            { label: "PSNR-Y (missed)", scale: "db", stroke: "#94a3b8", width: 0, points: { show: true, size: 4, fill: "#94a3b8" } },
            { label: "best PSNR-Y so far", scale: "db", stroke: "#4f46e5", width: 2, spanGaps: true },
            { label: "Mbps", scale: "mbps", stroke: "#f59e0b", width: 0, points: { show: true, size: 3, fill: "#f59e0b" } },
            { label: "lowest Mbps so far", scale: "mbps", stroke: "#dc2626", width: 2, dash: [6, 4], spanGaps: true },
          ],
        }, [p.iteration, achievedPsnr, otherPsnr, p.best_psnr_y, p.mbps, p.best_mbps]);
        el.dataset.points = String(p.iteration.length);
      })
      .catch(function (err) {
        clearEmpty(el);
        el.textContent = "Could not load the progress: " + err.message;
      });
  }

  function framesChart(el) {
    var select = $(document, "[data-role=quality-select]");
    fetch(el.dataset.src, { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status + " " + r.statusText); } return r.json(); })
      .then(function (body) {
        var data = body.qualities;
        if (!select || !Object.keys(data).length) {
          $(el, ".chart-empty").textContent = "No per-frame data recorded.";
          return;
        }
        function draw() {
          var s = data[select.value];
          if (!s) { return; }
          var hasVmaf = s.vmaf.some(function (v) { return v !== null; });
          var series = [
            { label: "frame" },
            { label: "PSNR-Y dB", scale: "db", stroke: COLORS[0], width: 2, value: function (u, v) { return fmt(v, 2); } },
            { label: "SSIM-Y", scale: "ssim", stroke: COLORS[2], width: 1.5, value: function (u, v) { return fmt(v, 4); } },
          ];
          var rows = [s.frame, s.psnr_y, s.ssim_y];
          var axes = [
            { label: "frame" },
            { scale: "db", label: "PSNR-Y dB" },
            { scale: "ssim", label: "SSIM-Y", side: 1, grid: { show: false } },
          ];
          if (hasVmaf) {
            series.push({ label: "VMAF", scale: "vmaf", stroke: COLORS[1], width: 1.5, value: function (u, v) { return fmt(v, 1); } });
            rows.push(s.vmaf);
            axes.push({ scale: "vmaf", label: "VMAF", side: 1, grid: { show: false } });
          }
          mount(el, { scales: { x: { time: false } }, axes: axes, series: series }, rows);
          el.dataset.points = String(s.frame.length);
        }
        select.addEventListener("change", draw);
        draw();
      })
      .catch(function (err) {
        clearEmpty(el);
        el.textContent = "Could not load the per-frame metrics: " + err.message;
      });
  }

  function rdChart(el) {
    var data = jsonBlock("rd-data");
    var metricSelect = $(document, "[data-role=rd-metric]");
    if (!data || !Object.keys(data).length) { return; }
    function draw() {
      var metric = metricSelect ? metricSelect.value : "psnr_y";
      var names = [];
      var tables = [];
      Object.keys(data).forEach(function (name) {
        var s = data[name];
        var xs = [], ys = [];
        s.kbps.forEach(function (x, i) {
          if (s[metric][i] !== null && x > 0) { xs.push(x); ys.push(s[metric][i]); }
        });
        if (xs.length) { names.push(name); tables.push([xs, ys]); }
      });
      if (!tables.length) { el.dataset.points = "0"; return; }
      var joined = uPlot.join(tables);
      var candidateIndex = 0;
      var series = [{ label: "kbit/s", value: function (u, v) { return fmt(v, 1); } }];
      names.forEach(function (name) {
        var baseline = data[name].kind === "baseline";
        var color = baseline ? (BASELINE_COLORS[name] || "#94a3b8") : COLORS[candidateIndex++ % COLORS.length];
        series.push({
          label: name, stroke: color, width: baseline ? 1.5 : 2.5, spanGaps: true,
          dash: baseline ? [5, 4] : undefined,
          points: { show: true, size: baseline ? 5 : 7, fill: color },
          value: function (u, v) { return fmt(v, 2); },
        });
      });
      mount(el, {
        scales: { x: { time: false, distr: 3 } },
        axes: [{ label: "kbit/s (log)" }, { label: metric === "vmaf" ? "VMAF" : "PSNR-Y dB" }],
        series: series,
      }, joined);
      var count = 0;
      tables.forEach(function (t) { count += t[0].length; });
      el.dataset.points = String(count);
    }
    if (metricSelect) { metricSelect.addEventListener("change", draw); }
    draw();
  }

  /* ---- synchronised players and wipe ---------------------------------------------------- */

  function player(root) {
    var master = $(root, "[data-role=reconstructed]");
    var slave = $(root, "[data-role=original]");
    var seek = $(root, "[data-role=seek]");
    var time = $(root, "[data-role=time]");
    var playButton = $(root, "[data-action=play]");
    var wipeToggle = $(root, "[data-role=wipe-toggle]");
    var wipe = $(root, "[data-role=wipe]");
    var videos = $(root, "[data-role=videos]");
    var frames = document.querySelector("[data-frame-tool]");
    var fps = frames ? Number(frames.dataset.fps) : 25;
    var frame = 1 / fps;

    function align() {
      if (Math.abs(slave.currentTime - master.currentTime) > frame / 2) {
        slave.currentTime = master.currentTime;
      }
    }
    function show() {
      time.textContent = master.currentTime.toFixed(2) + " s";
      if (master.duration) { seek.value = String(Math.round(1000 * master.currentTime / master.duration)); }
    }
    master.addEventListener("play", function () {
      align();
      slave.play().catch(function () {});
      playButton.textContent = "❚❚ Pause";
    });
    master.addEventListener("pause", function () {
      slave.pause();
      slave.currentTime = master.currentTime;
      playButton.textContent = "▶ Play";
    });
    master.addEventListener("seeking", align);
    master.addEventListener("seeked", function () { align(); show(); });
    master.addEventListener("ratechange", function () { slave.playbackRate = master.playbackRate; });
    master.addEventListener("timeupdate", function () {
      show();
      if (!master.paused && Math.abs(slave.currentTime - master.currentTime) > frame) {
        slave.currentTime = master.currentTime;
      }
    });
    master.addEventListener("ended", function () { slave.pause(); });
    playButton.addEventListener("click", function () {
      if (master.paused) { master.play().catch(function () {}); } else { master.pause(); }
    });
    seek.addEventListener("input", function () {
      if (master.duration) { master.currentTime = master.duration * Number(seek.value) / 1000; }
    });
    $all(root, "[data-action=step]").forEach(function (button) {
      button.addEventListener("click", function () {
        master.pause();
        var target = master.currentTime + Number(button.dataset.step) * frame;
        master.currentTime = Math.max(0, Math.min(master.duration || 0, target));
      });
    });
    var line = $(root, "[data-role=wipe-line]");
    function applyWipe() {
      var left = Number(wipe.value);
      var wiping = videos.classList.contains("wipe");
      var pane = $(root, ".pane.original");
      pane.style.clipPath = wiping ? "inset(0 " + (100 - left) + "% 0 0)" : "";
      line.hidden = !wiping;
      line.style.left = left + "%";
      root.dataset.wipe = String(left);
    }
    wipeToggle.addEventListener("change", function () {
      videos.classList.toggle("wipe", wipeToggle.checked);
      videos.classList.toggle("side-by-side", !wipeToggle.checked);
      wipe.hidden = !wipeToggle.checked;
      applyWipe();
    });
    wipe.addEventListener("input", applyWipe);
  }

  /* ---- frame tool ------------------------------------------------------------------------ */

  function frameTool(root) {
    var exp = root.dataset.experiment;
    var count = Number(root.dataset.frames);
    var input = $(root, "[data-role=frame]");
    var view = $(root, "[data-role=view]");
    var zoom = $(root, "[data-role=zoom]");
    var under = $(root, "[data-role=under]");
    var over = $(root, "[data-role=over]");
    var wipe = $(root, "[data-role=frame-wipe]");
    var legend = $(root, "[data-role=legend]");
    var stats = $(root, "[data-role=frame-stats]");
    var index = 0;
    var request = 0;

    function url(kind) { return "/api/experiments/" + encodeURIComponent(exp) + "/frames/" + index + "/" + kind + ".png"; }
    function size(img) {
      if (img.naturalWidth) { img.style.width = img.naturalWidth * Number(zoom.value) + "px"; }
    }
    function applyWipe() {
      over.style.clipPath = "inset(0 " + (100 - Number(wipe.value)) + "% 0 0)";
      root.dataset.wipe = wipe.value;
    }
    function load() {
      var mine = ++request;
      var kind = view.value;
      input.value = String(index);
      root.dataset.frame = String(index);
      stats.textContent = "decoding frame " + index + "…";
      over.style.opacity = "";
      if (kind === "wipe") {
        under.src = url("reconstructed");
        over.src = url("original");
        over.hidden = false;
        wipe.hidden = false;
        applyWipe();
      } else if (kind === "overlay") {
        under.src = url("reconstructed");
        over.src = url("heatmap");
        over.hidden = false;
        over.style.clipPath = "";
        over.style.opacity = "0.55";
        wipe.hidden = true;
      } else {
        under.src = url(kind);
        over.hidden = true;
        wipe.hidden = true;
      }
      legend.hidden = kind !== "heatmap" && kind !== "overlay";
      fetch("/api/experiments/" + encodeURIComponent(exp) + "/frames/" + index, { headers: { Accept: "application/json" } })
        .then(function (r) {
          return r.json().then(function (body) {
            if (!r.ok) { throw new Error(typeof body.detail === "string" ? body.detail : r.status); }
            return body;
          });
        })
        .then(function (s) {
          if (mine !== request) { return; }
          stats.textContent = "frame " + s.index + ": PSNR-Y " + (s.psnr_y === null ? "∞ (identical)" : fmt(s.psnr_y, 2) + " dB") +
            ", MSE " + fmt(s.mse_y, 2) + "; worst " + s.block_size + "×" + s.block_size + " block at (" +
            s.worst_block_x + ", " + s.worst_block_y + "): " + fmt(s.block_psnr_min, 2) + " dB";
          root.dataset.loaded = String(s.index);
        })
        .catch(function (err) {
          if (mine === request) { stats.textContent = "frame " + index + " unavailable: " + err.message; }
        });
    }
    function go(target) {
      index = Math.max(0, Math.min(count - 1, target));
      load();
    }
    under.addEventListener("load", function () { size(under); });
    over.addEventListener("load", function () { size(over); });
    zoom.addEventListener("change", function () { size(under); size(over); });
    view.addEventListener("change", load);
    wipe.addEventListener("input", applyWipe);
    input.addEventListener("change", function () { go(Number(input.value) || 0); });
    $(root, "[data-action=first]").addEventListener("click", function () { go(0); });
    $(root, "[data-action=prev]").addEventListener("click", function () { go(index - 1); });
    $(root, "[data-action=next]").addEventListener("click", function () { go(index + 1); });
    $(root, "[data-action=last]").addEventListener("click", function () { go(count - 1); });
    root.addEventListener("keydown", function (e) {
      if (e.target === input) { return; }
      if (e.key === "ArrowRight") { go(index + 1); e.preventDefault(); }
      if (e.key === "ArrowLeft") { go(index - 1); e.preventDefault(); }
    });
    load();
  }

  /* ---- downloads, links, transcodes, admin ----------------------------------------------- */

  function post(url, token) {
    var headers = { Accept: "application/json" };
    if (token) { headers.Authorization = "Bearer " + token; }
    return fetch(url, { method: "POST", headers: headers }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    });
  }
  function detail(result) {
    var d = result.body && result.body.detail;
    return result.status + ": " + (typeof d === "string" ? d : JSON.stringify(d));
  }
  function linkLine(out, label, href) {
    var line = document.createElement("div");
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    a.target = "_blank";
    a.rel = "noopener";
    line.appendChild(a);
    out.appendChild(line);
  }

  function downloads(article) {
    var exp = article.dataset.experiment;
    var out = $(article, "[data-role=downloads-out]");
    if (!out) { return; }
    $all(article, "[data-action=transcode]").forEach(function (button) {
      button.addEventListener("click", function () {
        button.disabled = true;
        out.textContent = "Transcoding to " + button.dataset.format + "… (decoding the stored stream first)";
        post("/api/experiments/" + encodeURIComponent(exp) + "/transcode?format=" + button.dataset.format)
          .then(function (result) {
            button.disabled = false;
            if (!result.ok) { out.textContent = "Transcode failed: " + detail(result); return; }
            out.textContent = "";
            linkLine(out, "reconstruction." + result.body.format + " (" + Math.round(result.body.size / 1000) + " kB" +
              (result.body.cached ? ", made earlier" : "") + ")", result.body.url);
          });
      });
    });
    var linksButton = $(article, "[data-action=links]");
    if (linksButton) {
      linksButton.addEventListener("click", function () {
        post("/api/experiments/" + encodeURIComponent(exp) + "/links?expires=7d").then(function (result) {
          if (!result.ok) { out.textContent = "Could not make links: " + detail(result); return; }
          out.textContent = "Links valid until " + result.body.expires_at + ":";
          Object.keys(result.body.links).sort().forEach(function (name) { linkLine(out, name, result.body.links[name]); });
        });
      });
    }
  }

  /* Admin actions send the admin token as a Bearer header (never a cookie), asked once per tab. */
  function adminToken() {
    var saved = sessionStorage.getItem("codeclab-admin-token");
    if (saved) { return saved; }
    var given = window.prompt("Admin token (kept for this tab only):");
    if (given) { sessionStorage.setItem("codeclab-admin-token", given); }
    return given;
  }
  function adminRequest(out, button, method, url, body, done) {
    var t = adminToken();
    var headers = { Accept: "application/json" };
    if (t) { headers.Authorization = "Bearer " + t; }
    var init = { method: method, headers: headers };
    if (body !== null) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    out.textContent = "working…";
    button.disabled = true;
    fetch(url, init).then(function (r) {
      return r.json().then(function (answer) {
        button.disabled = false;
        var result = { ok: r.ok, status: r.status, body: answer };
        if (r.status === 401) { sessionStorage.removeItem("codeclab-admin-token"); }
        out.dataset.status = String(r.status);
        if (!r.ok) { out.textContent = "Refused: " + detail(result); return; }
        done(answer);
      });
    }).catch(function (error) { button.disabled = false; out.textContent = "Failed: " + error; });
  }

  function admin(article) {
    var out = $(article, "[data-role=admin-out]");
    if (!out) { return; }
    var del = $(article, "[data-action=admin-delete]");
    del.addEventListener("click", function () {
      if (!window.confirm("Delete experiment " + del.dataset.experiment + " and its objects?")) { return; }
      adminRequest(out, del, "DELETE", "/api/experiments/" + encodeURIComponent(del.dataset.experiment), null, function (body) {
        out.textContent = "Deleted " + body.experiment_id + " (" + body.deleted_objects.length + " objects).";
      });
    });
    var pub = $(article, "[data-action=admin-publish]");
    pub.addEventListener("click", function () {
      adminRequest(out, pub, "POST", "/api/experiments/" + encodeURIComponent(pub.dataset.experiment) + "/publish", null, function (body) {
        out.textContent = body.ok ? "Published again; reload to see fresh links." : "Publishing failed: " + body.error;
      });
    });
  }

  function stopRun(button) {
    var out = $(button.parentNode, "[data-role=admin-out]");
    button.addEventListener("click", function () {
      if (!window.confirm("Stop campaign run " + button.dataset.run + "? It can be resumed with codeclab run --resume.")) { return; }
      out.textContent = "stopping…";
      adminRequest(out, button, "POST", "/api/runs/" + encodeURIComponent(button.dataset.run) + "/stop", null, function (body) {
        out.textContent = "Campaign " + body.state + " (" + (body.stopped_by || "") + "); the run is recorded as stopped.";
      });
    });
  }

  function startCampaign(form) {
    var out = $(form.parentNode, "[data-role=admin-out]");
    var button = $(form, "button[type=submit]");
    function list(text) { return text.split(",").map(function (v) { return v.trim(); }).filter(function (v) { return v; }); }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = { vmaf: form.elements.vmaf.checked };
      ["designer", "publish", "time_budget"].forEach(function (name) {
        if (form.elements[name].value) { body[name] = form.elements[name].value; }
      });
      ["frames", "iterations", "seed", "workers"].forEach(function (name) {
        if (form.elements[name].value !== "") { body[name] = Number(form.elements[name].value); }
      });
      if (form.elements.clips.value) { body.clips = list(form.elements.clips.value); }
      if (form.elements.baselines.value !== "") { body.baselines = list(form.elements.baselines.value); }
      adminRequest(out, button, "POST", "/api/campaigns", body, function (answer) {
        out.textContent = "Started " + answer.id + " (process " + answer.pid + "); its run appears under Runs once it has prepared its clips.";
      });
    });
  }

  /* ---- live pages ------------------------------------------------------------------------ */

  function poll(el, apply) {
    var seconds = Math.max(0.2, Number(el.dataset.poll) || 3);
    var timer = null;
    function tick() {
      fetch(el.dataset.live, { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (body) {
          var more = apply(body);
          el.dataset.polls = String(Number(el.dataset.polls || 0) + 1);
          if (more) { timer = setTimeout(tick, seconds * 1000); }
        })
        .catch(function () { timer = setTimeout(tick, seconds * 2000); });
    }
    timer = setTimeout(tick, seconds * 1000);
    return function () { clearTimeout(timer); };
  }

  function cell(row, text, href) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function liveExperiment(article) {
    var PHASES = ["design", "validation", "deployment", "execution", "verification", "analysis", "publish"];
    poll(article, function (state) {
      var badge = $(article, "[data-role=status]");
      badge.textContent = state.current_phase ? state.status + ": " + state.current_phase : state.status;
      badge.className = "badge status-" + state.status;
      var latest = {};
      state.phases.forEach(function (p) { latest[p.phase] = p; });
      $all(article, "[data-role=timeline]").forEach(function (list) {
        list.textContent = "";
        PHASES.forEach(function (name) {
          var p = latest[name];
          var status = p ? p.status : "not reached";
          var li = document.createElement("li");
          li.className = "phase phase-" + status.replace(" ", "-");
          li.title = name + ": " + status;
          var dot = document.createElement("span"); dot.className = "dot"; li.appendChild(dot);
          var label = document.createElement("span"); label.className = "name"; label.textContent = name; li.appendChild(label);
          if (p && p.seconds !== null) {
            var secs = document.createElement("span"); secs.className = "secs"; secs.textContent = p.seconds.toFixed(1) + " s"; li.appendChild(secs);
          }
          list.appendChild(li);
        });
      });
      var running = state.status === "running" || state.status === "pending";
      if (!running) {
        var note = $(article, "[data-role=live-note]");
        if (note) {
          note.textContent = "This experiment has " + state.status + ". ";
          var a = document.createElement("a");
          a.href = window.location.pathname;
          a.textContent = "Reload for its results";
          note.appendChild(a);
        }
      }
      return running;
    });
  }

  function liveRun(section) {
    poll(section, function (progress) {
      var run = progress.run;
      ["experiments", "completed", "failed", "achieved"].forEach(function (name) {
        var el = $(section, "[data-count=" + name + "]");
        if (el) { el.textContent = String(run[name]); }
      });
      var status = $(section, "[data-role=run-status]");
      status.textContent = run.status;
      status.className = "badge status-" + run.status;
      var active = $(section, "[data-role=active]");
      active.textContent = "";
      progress.active.forEach(function (e) {
        var tr = document.createElement("tr");
        cell(tr, e.id, e.page); cell(tr, e.status); cell(tr, e.current_phase || "–"); cell(tr, e.updated_at.replace("T", " ").slice(0, 19));
        active.appendChild(tr);
      });
      if (!progress.active.length) {
        var tr = document.createElement("tr");
        cell(tr, "nothing running").colSpan = 4;
        active.appendChild(tr);
      }
      var latest = $(section, "[data-role=latest]");
      latest.textContent = "";
      progress.latest.forEach(function (e) {
        var row = document.createElement("tr");
        var first = cell(row, e.title, e.page);
        var id = document.createElement("div"); id.className = "small muted"; id.textContent = e.id; first.appendChild(id);
        cell(row, e.failed_phase ? "failed in " + e.failed_phase : e.status);
        cell(row, e.bitrate_bps === null ? "–" : (e.bitrate_bps / 1e6).toFixed(3)).className = "num";
        cell(row, fmt(e.psnr_y, 2)).className = "num";
        cell(row, fmt(e.vmaf, 1)).className = "num";
        cell(row, e.target_achieved === true ? "achieved" : e.target_achieved === false ? "missed" : "–");
        latest.appendChild(row);
      });
      return run.status === "running";
    });
  }

  /* ---- start ----------------------------------------------------------------------------- */

  document.addEventListener("DOMContentLoaded", function () {
    $all(document, "[data-chart=progress]").forEach(progressChart);
    $all(document, "[data-chart=frames]").forEach(framesChart);
    $all(document, "[data-chart=rd]").forEach(rdChart);
    $all(document, "[data-player]").forEach(player);
    $all(document, "[data-frame-tool]").forEach(frameTool);
    $all(document, "article.experiment").forEach(function (article) {
      downloads(article);
      admin(article);
      if (article.dataset.live) { liveExperiment(article); }
    });
    $all(document, "section[data-run][data-live]").forEach(liveRun);
    $all(document, "[data-action=admin-stop-run]").forEach(stopRun);
    $all(document, "form[data-role=start-campaign]").forEach(startCampaign);
  });
})();
