// The dashboard: every module of the portal over a date range and a segment, from the read API.
//
// The app comes from the URL path (.../v1/apps/APP/dashboard), the read token from the URL
// fragment (#token=..., never sent to a server), the range and segment from ?from=&to=&segment=
// (kept in the URL as they change). One range document (all segments) answers every module;
// the OS and region filters pick a segment of it without asking the server again. A metric's
// line chart reads the daily documents of the range, once per range and segment.
//
// Every table, card group and chart is drawn from a table model {columns, rows} of raw values:
// the page shows them through MinidramaFormat (the report's formatters) and its CSV download
// holds the same rows and columns, raw, so the file is exactly what is shown.
"use strict";

(function () {
  const F = window.MinidramaFormat;
  const base = location.pathname.replace(/\/dashboard\/?$/, "");
  const appId = decodeURIComponent(base.split("/").pop());
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const $ = (selector) => document.querySelector(selector);

  const STAGE_LABELS = {
    entrance_exposure: "Entrance exposure",
    entrance_click: "Entrance click",
    minis_visit: "Mini app visit",
    last_free_episode_watch: "Last free episode watched",
    third_party_payment_panel_show: "Third-party payment panel shown",
    third_party_payment_panel_click: "Third-party payment panel clicked",
    tiktok_payment_panel_show: "TikTok payment panel shown",
    tiktok_payment_panel_click: "TikTok payment panel clicked",
    recharge_order: "Recharge order",
    redeem_order: "Redeem order",
  };
  const STAGE_SHORT = {
    entrance_exposure: "Exposure",
    entrance_click: "Entrance click",
    minis_visit: "Visit",
    last_free_episode_watch: "Last free episode",
    third_party_payment_panel_show: "3rd-party panel shown",
    third_party_payment_panel_click: "3rd-party panel click",
    tiktok_payment_panel_show: "TikTok panel shown",
    tiktok_payment_panel_click: "TikTok panel click",
    recharge_order: "Recharge order",
    redeem_order: "Redeem order",
  };
  const OS_LABELS = { ios: "iOS", android: "Android" };
  const BREAKDOWN_LABELS = {
    gender: "Gender", age_group: "Age group", region: "Region",
    brand: "Brand", model: "Model", tiktok_version: "TikTok version",
  };

  // The cards of each block: [key, label, kind, what the number is (its denominator for rates)].
  const CARDS = {
    dashboard: [
      ["total_users", "Total users", "count", "launched on any day up to the range's end"],
      ["active_users", "Active users", "count", "launched in the range"],
      ["new_users", "New users", "count", "first launch ever in the range"],
      ["median_duration_per_user_ms", "Median time per active user", "duration", "sum of sessions in the range"],
    ],
    iap_users: [
      ["paying_users", "Paying users", "count", "1+ recharge order in the range"],
      ["paying_user_rate", "Paying user rate", "rate", "of active users"],
      ["repeat_paying_users", "Repeat paying users", "count", "2+ recharge orders in the range"],
      ["repeat_paying_user_rate", "Repeat paying user rate", "rate", "of active users"],
      ["arppu", "ARPPU", "money", "GMV per paying user"],
    ],
    iap_orders: [
      ["gmv", "GMV", "money", "recharge order amounts"],
      ["average_gmv", "Average GMV", "money", "per recharge order"],
      ["recharge_orders", "Recharge orders", "count", "Beans bought with money"],
      ["redeem_orders", "Redeem orders", "count", "episodes unlocked with Beans"],
    ],
    behavior: [
      ["total_users", "Total users", "count", "launched on any day up to the range's end"],
      ["active_users", "Active users", "count", "launched in the range"],
      ["new_users", "New users", "count", "first launch ever in the range"],
      ["repeat_users", "Repeat users", "count", "2+ launches in the range"],
      ["effectively_active_users", "Effectively active users", "count", "active users with time spent > 0"],
      ["visit_count", "Visits", "count", "successful launches"],
      ["average_visit_count", "Visits per active user", "decimal", "visits / active users"],
      ["median_duration_per_user_ms", "Median time per active user", "duration", "sum of sessions in the range"],
      ["median_duration_per_session_ms", "Median time per session", "duration", "over session ends"],
    ],
    performance: [
      ["loading_success_rate", "Loading success rate", "rate", "of launch attempts"],
      ["average_launch_ms", "Average launch speed", "launch", "click to first frame, successful launches"],
    ],
  };

  const state = {
    days: null,
    preset: "7",
    from: null,
    to: null,
    segment: "all",
    document: null,
    iapView: "users",
    payerType: "all",
    gmvView: "line",
    retentionUserType: "new",
    retentionShow: "rate",
    profileUserType: "active",
    deviceUserType: "active",
    orderType: "recharge",
    chart: null, // {block, path, label, kind}
    renders: 0,
  };
  const rangeCache = new Map();
  const dailyCache = new Map();
  const models = new Map(); // block name -> table model, for downloads
  window.minidramaDashboard = { state, lastRenderAt: 0, models, csv: (name) => csvOf(name) };

  // --- the read API ----------------------------------------------------------------------------

  async function api(path, params) {
    const query = new URLSearchParams(params).toString();
    const answer = await fetch(`${base}/${path}${query ? "?" + query : ""}`, {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const error = new Error(body.message || `the server answered ${answer.status}`);
      error.status = answer.status;
      throw error;
    }
    return body;
  }

  function rangeDocument(from, to) {
    const key = `${from}/${to}`;
    if (!rangeCache.has(key)) {
      const pending = api("metrics", { from, to });
      pending.catch(() => rangeCache.delete(key));
      rangeCache.set(key, pending);
    }
    return rangeCache.get(key);
  }

  function dailyDocuments(from, to, segment) {
    const key = `${from}/${to}/${segment}`;
    if (!dailyCache.has(key)) {
      const pending = api("metrics/daily", { from, to, segment }).then((body) => body.documents);
      pending.catch(() => dailyCache.delete(key));
      dailyCache.set(key, pending);
    }
    return dailyCache.get(key);
  }

  // --- dates -----------------------------------------------------------------------------------

  const parseDay = (text) => new Date(`${text}T00:00:00Z`);
  const dayText = (day) => day.toISOString().slice(0, 10);
  const addDays = (text, count) => dayText(new Date(parseDay(text).getTime() + count * 86400000));

  function daysOf(from, to) {
    const days = [];
    for (let day = from; day <= to; day = addDays(day, 1)) days.push(day);
    return days;
  }

  function presetRange(preset) {
    const last = state.days.last_day;
    const first = state.days.first_day;
    let from;
    let to = last;
    if (preset === "latest") from = last;
    else if (preset === "this-month") from = last.slice(0, 8) + "01";
    else if (preset === "last-month") {
      to = addDays(last.slice(0, 8) + "01", -1);
      from = to.slice(0, 8) + "01";
    } else from = addDays(last, -(Number(preset) - 1));
    if (from < first) from = first;
    if (to < first) to = first;
    return [from, to];
  }

  // A preset that ends before the first computed day has nothing to show.
  function markEmptyPresets() {
    for (const option of $("#preset").options) {
      if (option.value === "custom") continue;
      const ends = option.value === "last-month" ? addDays(state.days.last_day.slice(0, 8) + "01", -1) : state.days.last_day;
      option.disabled = ends < state.days.first_day;
    }
  }

  function matchingPreset(from, to) {
    for (const option of $("#preset").options) {
      if (option.value === "custom" || option.disabled) continue;
      const [presetFrom, presetTo] = presetRange(option.value);
      if (presetFrom === from && presetTo === to) return option.value;
    }
    return "custom";
  }

  // --- table models, cells and downloads -------------------------------------------------------

  function cell(raw, kind) {
    return { raw, kind };
  }

  function show(value) {
    return F.value(value.raw, value.kind, state.document.currency);
  }

  function csvField(raw) {
    if (raw === null || raw === undefined) return "";
    const text = String(raw);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  function modelCsv(model) {
    const lines = [model.columns.map((column) => csvField(column)).join(",")];
    for (const row of model.rows) lines.push(row.map((value) => csvField(value.raw)).join(","));
    return lines.join("\r\n") + "\r\n";
  }

  function csvOf(name) {
    return modelCsv(models.get(name));
  }

  function download(name) {
    const blob = new Blob([csvOf(name)], { type: "text/csv;charset=utf-8" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${appId}-${name}-${state.from}-${state.to}-${state.segment.replace(":", "-")}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  function downloadButton(name, label = "Download CSV") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "download";
    button.textContent = label;
    button.dataset.download = name;
    button.addEventListener("click", () => download(name));
    return button;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A table of a model; `numeric` columns align right. `bars` draws a share bar in a column.
  function renderTable(container, name, model, options = {}) {
    models.set(name, model);
    container.replaceChildren();
    const head = element("div", "block-head");
    if (options.caption) head.append(element("p", "caption", options.caption));
    head.append(downloadButton(name));
    container.append(head);
    const wrap = element("div", "table-wrap");
    const table = element("table");
    table.dataset.model = name;
    if (model.columns.length <= 3) table.className = "narrow";
    const headRow = element("tr");
    model.columns.forEach((column, index) => {
      const th = element("th", index ? "num" : "", column);
      th.scope = "col";
      headRow.append(th);
    });
    table.append(element("thead"));
    table.tHead.append(headRow);
    const body = element("tbody");
    for (const row of model.rows) {
      const tr = element("tr");
      if (row.total) tr.className = "total";
      row.forEach((value, index) => {
        const td = element(index ? "td" : "th", value.kind === "text" ? "" : "num", show(value));
        td.dataset.kind = value.kind;
        if (!index) td.scope = "row";
        if (options.bars === index && typeof value.raw === "number") {
          const bar = element("span", "bar");
          bar.style.width = `${Math.max(0, Math.min(1, value.share || 0)) * 100}%`;
          td.prepend(bar);
        }
        tr.append(td);
      });
      body.append(tr);
    }
    if (!model.rows.length) {
      const tr = element("tr");
      const td = element("td", "empty", "Nothing in this range.");
      td.colSpan = model.columns.length;
      tr.append(td);
      body.append(tr);
    }
    table.append(body);
    wrap.append(table);
    container.append(wrap);
  }

  // --- blocks ----------------------------------------------------------------------------------

  function segmentOf(document) {
    return document.segments[state.segment];
  }

  function renderCards(block, values, pathPrefix) {
    const container = document.querySelector(`[data-block="${block}"]`);
    const cards = CARDS[block === "iap_orders" ? "iap_orders" : block];
    const model = {
      columns: ["Metric", "Value"],
      rows: cards.map(([key, label, kind]) => [cell(label, "text"), cell(values[key], kind)]),
    };
    models.set(block, model);
    container.replaceChildren();
    cards.forEach(([key, label, kind, hint], index) => {
      const card = element("button", "card");
      card.type = "button";
      const path = `${pathPrefix}.${key}`;
      card.dataset.metric = path;
      card.dataset.kind = kind;
      card.setAttribute("aria-pressed", String(state.chart !== null && state.chart.path === path));
      card.append(element("span", "label", label));
      const number = element("span", "value", show(model.rows[index][1]));
      number.dataset.metric = path;
      number.dataset.kind = kind;
      card.append(number);
      card.append(element("span", "hint", hint));
      card.addEventListener("click", () => toggleChart({ block, path, label, kind }));
      container.append(card);
    });
    const tools = element("div", "cards-tools");
    tools.append(downloadButton(block, "Download CSV"));
    container.append(tools);
    placeChart(block, container);
  }

  function renderLtv(segment) {
    const ltv = segment.iap_users.ltv;
    const windows = [
      ["range", "Whole range"],
      ["d0", "Day 0"],
      ["d7", "Days 0–7"],
      ["d30", "Days 0–30"],
    ];
    renderTable($('[data-block="ltv"]'), "ltv", {
      columns: ["Revenue window", "Cohort size", "Revenue", "LTV"],
      rows: windows.map(([key, label]) => [
        cell(label, "text"),
        cell(ltv[key].cohort_size, "count"),
        cell(ltv[key].revenue, "money"),
        cell(ltv[key].value, "money"),
      ]),
    }, { caption: `The new users of ${state.from} to ${state.to}, and their recharges. Days 0–N: only users whose first launch is at least N days before the range's end, and their revenue up to N days after it. LTV = revenue / cohort size.` });
  }

  function renderTopProducts(orders) {
    renderTable($('[data-block="top_products"]'), "top_products", {
      columns: ["Product", "Redeem orders"],
      rows: orders.top_redeemed_products.map((product) => [cell(product.product_id, "text"), cell(product.orders, "count")]),
    });
  }

  function renderRetention(segment) {
    const table = segment.retention[state.retentionUserType];
    const field = state.retentionShow;
    const kind = field === "rate" ? "rate" : "count";
    const rows = table.cohorts.map((row) => [
      cell(row.cohort_date, "text"),
      cell(row.cohort_size, "count"),
      ...["d1", "d7", "d14", "d30"].map((n) => cell(row[n] === null ? null : row[n][field], kind)),
    ]);
    const total = [cell("All cohorts", "text"), cell(null, "count"),
      ...["d1", "d7", "d14", "d30"].map((n) => cell(table[n][field], kind))];
    total.total = true;
    rows.push(total);
    const who = state.retentionUserType === "new" ? "new users" : "active users";
    renderTable($('[data-block="retention"]'), "retention", {
      columns: ["Cohort", "Users", "Day 1", "Day 7", "Day 14", "Day 30"],
      rows,
    }, {
      caption: `Cohort: the ${who} of a day. Day N: ${field === "rate" ? "share of the cohort" : "cohort members"} who launched again N days later (any OS or region); "—" where that day is after the range. All cohorts: the cohorts with that day in the range together.`,
    });
  }

  function breakdownModel(counts, label) {
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const total = entries.reduce((sum, [, users]) => sum + users, 0);
    return {
      columns: [label, "Users", "Share"],
      rows: entries.map(([value, users]) => {
        const share = cell(total ? users / total : null, "rate");
        const count = cell(users, "count");
        count.share = total ? users / total : 0;
        return [cell(value, "text"), count, share];
      }),
    };
  }

  function renderBreakdowns(block, values) {
    const container = document.querySelector(`[data-block="${block}"]`);
    container.replaceChildren();
    for (const [attribute, counts] of Object.entries(values)) {
      const part = element("div", "breakdown");
      part.append(element("h4", "", BREAKDOWN_LABELS[attribute] || attribute));
      const slot = element("div", "table-block");
      part.append(slot);
      container.append(part);
      renderTable(slot, `${block}-${attribute}`, breakdownModel(counts, BREAKDOWN_LABELS[attribute] || attribute), { bars: 1 });
    }
  }

  function renderEntryPoints(segment) {
    const rows = Object.entries(segment.entry_points)
      .sort((a, b) => b[1].launch_sessions - a[1].launch_sessions || (a[0] < b[0] ? -1 : 1))
      .map(([name, point]) => [
        cell(name, "text"),
        cell(point.active_users, "count"),
        cell(point.new_users, "count"),
        cell(point.launch_sessions, "count"),
        cell(point.average_duration_per_session_ms, "duration"),
      ]);
    renderTable($('[data-block="entry_points"]'), "entry_points", {
      columns: ["Entry point", "Active users", "New users", "Launch sessions", "Time per session"],
      rows,
    }, { caption: "A user counts under every entry point they launched through." });
  }

  function renderFunnel(segment) {
    const stages = segment.funnel[state.orderType];
    const model = {
      columns: ["Stage", "Page views", "Of the stage before", "Of the first stage"],
      rows: stages.map((stage) => [
        cell(STAGE_LABELS[stage.stage] || stage.stage, "text"),
        cell(stage.pv, "count"),
        cell(stage.rate_from_previous, "rate"),
        cell(stage.rate_from_first, "rate"),
      ]),
    };
    const note = state.orderType === "redeem"
      ? "Redeem orders count episodes unlocked with Beans: one payment can unlock many episodes, so the last stage can be above 100% of the one before."
      : "Each stage counts page views (events), not users; a rate above 100% means more views than the stage before.";
    $("#funnel-note").textContent = note;
    renderTable($('[data-block="funnel"]'), "funnel", model);
    drawChart($('[data-block="funnel_chart"]'), {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      data: { values: stages.map((stage) => ({ stage: STAGE_SHORT[stage.stage] || stage.stage, name: STAGE_LABELS[stage.stage] || stage.stage, pv: stage.pv })) },
      mark: { type: "bar", color: "#3461c7" },
      encoding: {
        y: { field: "stage", type: "nominal", sort: null, title: null, axis: { labelLimit: 150 } },
        x: { field: "pv", type: "quantitative", title: "Page views" },
        tooltip: [{ field: "name", title: "Stage" }, { field: "pv", title: "Page views", format: "," }],
      },
      height: stages.length * 22,
    });
  }

  function gmvPieModel(kind) {
    const prefix = `${kind}:`;
    const rows = Object.entries(state.document.segments)
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, values]) => [cell(segmentLabel(name), "text"), cell(values.iap_orders[state.payerType].gmv, "money")])
      .sort((a, b) => b[1].raw - a[1].raw);
    return { columns: [kind === "os" ? "OS" : "Region", "GMV"], rows };
  }

  function renderGmv() {
    const container = $('[data-block="gmv"]');
    document.querySelectorAll("[data-gmv-view]").forEach((button) =>
      button.setAttribute("aria-pressed", String(button.dataset.gmvView === state.gmvView)));
    if (state.gmvView === "line") {
      const path = `iap_orders.${state.payerType}.gmv`;
      renderSeries(container, "gmv", path, "GMV", "money");
      return;
    }
    const model = gmvPieModel(state.gmvView);
    container.replaceChildren();
    const head = element("div", "block-head");
    head.append(element("p", "caption", `GMV of ${payerLabel()} by ${state.gmvView === "os" ? "OS" : "region"}, over the whole range (every segment, whatever the filter).`));
    head.append(downloadButton("gmv"));
    models.set("gmv", model);
    container.append(head);
    const chart = element("div", "chart");
    chart.dataset.points = String(model.rows.length);
    container.append(chart);
    drawChart(chart, {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      data: { values: model.rows.map((row) => ({ name: row[0].raw, gmv: row[1].raw })) },
      mark: { type: "arc", innerRadius: 40 },
      encoding: {
        theta: { field: "gmv", type: "quantitative", stack: true },
        color: { field: "name", type: "nominal", title: null, sort: { field: "gmv", order: "descending" }, scale: { scheme: "tableau20" } },
        tooltip: [{ field: "name", title: model.columns[0] }, { field: "gmv", title: "GMV", format: ",.2f" }],
      },
      view: { stroke: null },
    });
    container.append(dataTable(model));
  }

  function payerLabel() {
    return { all: "all payers", new_payers: "new payers", returning_payers: "returning payers" }[state.payerType];
  }

  // A model as a small table under a chart: the numbers the chart draws, also for screen readers.
  function dataTable(model) {
    const details = element("details", "chart-data");
    details.append(element("summary", "", "Data"));
    const table = element("table");
    const head = element("tr");
    model.columns.forEach((column) => head.append(element("th", "", column)));
    table.append(head);
    for (const row of model.rows) {
      const tr = element("tr");
      row.forEach((value) => {
        const td = element("td", value.kind === "text" ? "" : "num", show(value));
        td.dataset.kind = value.kind;
        tr.append(td);
      });
      table.append(tr);
    }
    details.append(table);
    return details;
  }

  // --- line charts -----------------------------------------------------------------------------

  function valueAt(values, path) {
    let current = values;
    for (const part of path.split(".")) {
      if (current === null || current === undefined) return null;
      current = current[part];
    }
    return current === undefined ? null : current;
  }

  // The daily series of `path` over the range in the current segment, drawn in `container`.
  async function renderSeries(container, name, path, label, kind) {
    const requested = `${state.from}/${state.to}/${state.segment}/${path}`;
    container.dataset.series = requested;
    container.replaceChildren(element("p", "loading", "Loading the daily series…"));
    let documents;
    try {
      documents = await dailyDocuments(state.from, state.to, state.segment);
    } catch (error) {
      container.replaceChildren(element("p", "error", error.message));
      return;
    }
    if (container.dataset.series !== requested) return; // a newer request replaced this one
    const byDay = new Map(documents.map((document) => [document.date, document]));
    const model = {
      columns: ["Date", label],
      rows: daysOf(state.from, state.to).map((day) => {
        const document = byDay.get(day);
        const values = document ? document.segments[state.segment] : undefined;
        return [cell(day, "text"), cell(values ? valueAt(values, path) : null, kind)];
      }),
    };
    models.set(name, model);
    container.replaceChildren();
    const head = element("div", "block-head");
    head.append(element("p", "caption", `${label} by day, ${segmentLabel(state.segment)}`));
    head.append(downloadButton(name));
    container.append(head);
    const chart = element("div", "chart");
    chart.dataset.points = String(model.rows.length);
    chart.dataset.metric = path;
    container.append(chart);
    const points = model.rows.map((row) => ({ date: row[0].raw, value: row[1].raw, shown: show(row[1]) }));
    drawChart(chart, {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      data: { values: points },
      mark: { type: "line", point: true, color: "#3461c7" },
      encoding: {
        x: { field: "date", type: "temporal", timeUnit: "utcyearmonthdate", title: null, axis: { format: "%b %d", labelOverlap: true } },
        y: { field: "value", type: "quantitative", title: null, axis: { format: kind === "rate" ? "%" : "~s" } },
        tooltip: [
          { field: "date", type: "temporal", timeUnit: "utcyearmonthdate", title: "Date", format: "%a %b %d, %Y" },
          { field: "shown", title: label },
        ],
      },
    });
    container.append(dataTable(model));
  }

  function toggleChart(chart) {
    const same = state.chart && state.chart.path === chart.path && state.chart.block === chart.block;
    state.chart = same ? null : chart;
    document.querySelectorAll(".card").forEach((card) =>
      card.setAttribute("aria-pressed", String(!same && card.dataset.metric === chart.path && card.parentElement.dataset.block === chart.block)));
    document.querySelectorAll(".chart-panel").forEach((panel) => panel.remove());
    if (!same) placeChart(chart.block, document.querySelector(`[data-block="${chart.block}"]`));
  }

  function placeChart(block, container) {
    container.parentElement.querySelectorAll(`.chart-panel[data-for="${block}"]`).forEach((panel) => panel.remove());
    if (!state.chart || state.chart.block !== block) return;
    const panel = $("#chart-panel").content.firstElementChild.cloneNode(true);
    panel.dataset.for = block;
    panel.querySelector("h4").textContent = `${state.chart.label}, by day`;
    panel.querySelector(".close").addEventListener("click", () => toggleChart(state.chart));
    container.after(panel);
    renderSeries(panel.querySelector(".chart"), "chart", state.chart.path, state.chart.label, state.chart.kind);
  }

  function drawChart(container, spec) {
    // The chart takes its container's width, axis labels included (autosize fit-x).
    const width = Math.max(200, Math.min(container.clientWidth || 600, 1100) - 8);
    const sized = { width, autosize: { type: "fit-x", contains: "padding" }, config: { font: "system-ui, sans-serif", view: { stroke: null } }, ...spec };
    vegaEmbed(container, sized, {
      actions: false,
      renderer: "svg",
      ast: true,
      expr: vega.expressionInterpreter,
      defaultStyle: false,
      tooltip: { disableDefaultStyle: true },
    }).catch((error) => console.warn("chart", error));
  }

  // --- the page --------------------------------------------------------------------------------

  function segmentLabel(name) {
    if (name === "all") return "all users";
    const [kind, value] = name.split(":");
    if (kind === "os") return OS_LABELS[value] || value;
    try {
      return `${new Intl.DisplayNames(["en"], { type: "region" }).of(value)} (${value})`;
    } catch (error) {
      return value;
    }
  }

  function fillSegmentOptions() {
    for (const kind of ["os", "region"]) {
      const select = document.getElementById(kind);
      const names = Object.keys(state.document.segments).filter((name) => name.startsWith(`${kind}:`));
      select.replaceChildren(new Option("All", ""));
      for (const name of names) select.append(new Option(segmentLabel(name), name));
      select.value = state.segment.startsWith(`${kind}:`) ? state.segment : "";
    }
  }

  function render() {
    const segment = segmentOf(state.document);
    renderCards("dashboard", segment.dashboard, "dashboard");
    renderCards("iap_users", segment.iap_users, "iap_users");
    renderLtv(segment);
    const orders = segment.iap_orders[state.payerType];
    renderCards("iap_orders", orders, `iap_orders.${state.payerType}`);
    renderTopProducts(orders);
    renderCards("behavior", segment.behavior, "behavior");
    renderRetention(segment);
    renderBreakdowns("profile", segment.profile[state.profileUserType]);
    renderBreakdowns("device", segment.device[state.deviceUserType]);
    renderEntryPoints(segment);
    renderFunnel(segment);
    renderCards("performance", segment.performance, "performance");
    document.querySelectorAll("[data-iap-panel]").forEach((panel) => { panel.hidden = panel.dataset.iapPanel !== state.iapView; });
    document.querySelectorAll("[data-iap-view]").forEach((button) => button.setAttribute("aria-pressed", String(button.dataset.iapView === state.iapView)));
    if (state.iapView === "orders") renderGmv();
    state.renders += 1;
    document.documentElement.dataset.renders = String(state.renders);
    window.minidramaDashboard.lastRenderAt = performance.now();
  }

  function describeRange() {
    const count = daysOf(state.from, state.to).length;
    const span = state.from === state.to ? state.from : `${state.from} to ${state.to}`;
    $("#range-line").textContent = `${span} · ${count} day${count === 1 ? "" : "s"} · ${segmentLabel(state.segment)} · ${state.document.timezone} · ${state.document.currency}`;
  }

  function keepInUrl() {
    const params = new URLSearchParams({ from: state.from, to: state.to });
    if (state.segment !== "all") params.set("segment", state.segment);
    history.replaceState(null, "", `${location.pathname}?${params}${location.hash}`);
  }

  function setStatus(text, kind = "") {
    const status = $("#status");
    status.textContent = text;
    status.className = `status ${kind}`;
    status.hidden = !text;
  }

  // After the first range shows, the other presets are fetched one at a time in the background,
  // so that choosing one redraws at once; only when the server answered the first one quickly,
  // so that a large lake is not asked for ranges nobody looked at.
  const PREFETCH_WHEN_FASTER_THAN_MS = 1500;

  async function prefetchPresets() {
    for (const option of $("#preset").options) {
      if (option.value === "custom" || option.disabled) continue;
      const [from, to] = presetRange(option.value);
      try {
        await rangeDocument(from, to);
      } catch (error) {
        return; // the page shows errors for what the user asks for, not for this
      }
    }
  }

  async function load(from, to, { first = false } = {}) {
    setStatus(`Loading ${from === to ? from : `${from} to ${to}`}…`);
    document.documentElement.dataset.loading = "true";
    const asked = performance.now();
    try {
      const documentForRange = await rangeDocument(from, to);
      if (first && performance.now() - asked < PREFETCH_WHEN_FASTER_THAN_MS) {
        setTimeout(prefetchPresets, 0);
      }
      state.from = from;
      state.to = to;
      state.document = documentForRange;
      if (!state.document.segments[state.segment]) state.segment = "all";
      state.preset = matchingPreset(from, to);
      $("#preset").value = state.preset;
      $("#custom-range").hidden = state.preset !== "custom";
      $("#from").value = from;
      $("#to").value = to;
      fillSegmentOptions();
      describeRange();
      keepInUrl();
      $("#modules").hidden = false;
      setStatus("");
      render();
    } catch (error) {
      setStatus(error.message, "error");
    } finally {
      delete document.documentElement.dataset.loading;
    }
  }

  function chooseSegment(value) {
    state.segment = value || "all";
    fillSegmentOptions();
    describeRange();
    keepInUrl();
    render();
  }

  function wire() {
    $("#preset").addEventListener("change", (event) => {
      const preset = event.target.value;
      if (preset === "custom") {
        $("#custom-range").hidden = false;
        return;
      }
      const [from, to] = presetRange(preset);
      load(from, to);
    });
    $("#apply-custom").addEventListener("click", () => {
      const from = $("#from").value;
      const to = $("#to").value;
      if (!from || !to || from > to) {
        setStatus("Choose a first day on or before the last day.", "error");
        return;
      }
      load(from, to);
    });
    $("#os").addEventListener("change", (event) => chooseSegment(event.target.value));
    $("#region").addEventListener("change", (event) => chooseSegment(event.target.value));
    const rerender = (key) => (event) => { state[key] = event.target.value; render(); };
    $("#payer-type").addEventListener("change", rerender("payerType"));
    $("#retention-user-type").addEventListener("change", rerender("retentionUserType"));
    $("#retention-show").addEventListener("change", rerender("retentionShow"));
    $("#profile-user-type").addEventListener("change", rerender("profileUserType"));
    $("#device-user-type").addEventListener("change", rerender("deviceUserType"));
    $("#order-type").addEventListener("change", rerender("orderType"));
    document.querySelectorAll("[data-iap-view]").forEach((button) =>
      button.addEventListener("click", () => { state.iapView = button.dataset.iapView; render(); }));
    document.querySelectorAll("[data-gmv-view]").forEach((button) =>
      button.addEventListener("click", () => { state.gmvView = button.dataset.gmvView; renderGmv(); }));
  }

  async function start() {
    $("#app-name").textContent = appId;
    document.title = `${appId} · Mini Drama Analytics`;
    if (!token) {
      setStatus("This page needs a read token in its address (…/dashboard#token=…). Get a link with `minidrama apps token " + appId + "`.", "error");
      return;
    }
    wire();
    try {
      state.days = await api("metrics/days", {});
    } catch (error) {
      setStatus(error.message, "error");
      return;
    }
    if (!state.days.last_day) {
      setStatus(`No day of ${appId} has been computed yet.`, "error");
      return;
    }
    const yesterday = addDays(state.days.today, -1);
    $("#preset").options[0].textContent = state.days.last_day === yesterday ? "Yesterday" : `Latest day (${state.days.last_day})`;
    $("#data-through").textContent = `Data through ${state.days.last_day}`;
    markEmptyPresets();
    $("#from").min = $("#to").min = state.days.first_day;
    $("#from").max = $("#to").max = state.days.last_day;
    const params = new URLSearchParams(location.search);
    state.segment = params.get("segment") || "all";
    const [from, to] = params.get("from") && params.get("to") ? [params.get("from"), params.get("to")] : presetRange("7");
    await load(from, to, { first: true });
  }

  // A new token pasted into the address (only the fragment changes): start again with it.
  window.addEventListener("hashchange", () => location.reload());
  start();
})();
