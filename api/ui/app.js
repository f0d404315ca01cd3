"use strict";
// The shop team's page: plain DOM, no build step. Every text from the catalog, a shopper or the API is
// set with textContent, never parsed as HTML.

const KEY_STORAGE = "reco-api-key";
const SHOPPER_STORAGE = "reco-shopper";
const DEMO_SHOPPERS = ["demo-runner", "demo-cook", "demo-gardener"];
const EVENT_VERBS = { view: "viewed", click: "looked at", add_to_cart: "added to your cart", purchase: "bought", rating: "rated" };
let keysRequired = false;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, "X-API-Key": key } : extra;
}

function errorMessage(body, status) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((item) => [item.loc && item.loc.join("."), item.msg].filter(Boolean).join(": ")).join("; ");
  }
  return `the service answered ${status}`;
}

async function api(method, path, body) {
  const options = { method, headers: headers() };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, `the service cannot be reached (${error.message})`);
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch (error) {
    parsed = null;
  }
  if (!response.ok) {
    if (response.status === 401) showKeyForm();
    throw new ApiError(response.status, errorMessage(parsed, response.status));
  }
  return parsed;
}

function showError(error) {
  const box = document.getElementById("messages");
  box.replaceChildren(el("p", { class: "error", text: error instanceof ApiError ? error.message : String(error) }));
}

function showInfo(text) {
  document.getElementById("messages").replaceChildren(el("p", { class: "info", text }));
}

function clearMessages() {
  document.getElementById("messages").replaceChildren();
}

function showKeyForm() {
  const form = document.getElementById("key-form");
  form.hidden = false;
  document.getElementById("key-input").focus();
}

function money(value) {
  return typeof value === "number" ? value.toFixed(2) : "";
}

function productLink(product) {
  return el("a", { href: `#/product/${encodeURIComponent(product.product_id)}`, text: product.title || product.product_id });
}

// ---- Shop ----

function evidenceList(evidence) {
  const items = [];
  for (const match of evidence.nearest_history || []) {
    const verb = EVENT_VERBS[match.event_type] || "viewed";
    items.push(el("li", {}, `like ${match.title}, which you ${verb} (similarity ${Number(match.similarity).toFixed(2)})`));
  }
  if (evidence.shared_category) items.push(el("li", {}, `same category: ${evidence.shared_category}`));
  if (evidence.shared_brand) items.push(el("li", {}, `same brand: ${evidence.shared_brand}`));
  for (const [name, value] of Object.entries(evidence.shared_attributes || {})) {
    items.push(el("li", {}, `shared ${name}: ${value}`));
  }
  if ((evidence.query_terms || []).length) items.push(el("li", {}, `matches: ${evidence.query_terms.join(", ")}`));
  return items.length ? el("ul", { class: "evidence", "aria-label": "evidence" }, items) : null;
}

function recommendationCard(item) {
  const product = item.product || {};
  const explanation = item.explanation;
  return el(
    "li",
    { class: "card", "data-product-id": item.product_id },
    el("h3", {}, productLink({ ...product, product_id: item.product_id })),
    el("p", { class: "meta" }, [product.category, product.brand, money(product.price)].filter(Boolean).join(" · ")),
    el("p", { class: "meta" }, el("span", { class: "badge", text: item.signal }), `#${item.position} · score ${Number(item.score).toFixed(3)}`),
    item.rule ? el("p", { class: "meta rule", text: `placed by ${item.rule}` }) : null,
    explanation ? el("p", { class: "why", text: explanation.text }) : null,
    explanation ? evidenceList(explanation.evidence || {}) : null,
  );
}

function readFilters(form) {
  const data = new FormData(form);
  const filters = {};
  if (data.get("category")) filters.category = data.get("category");
  if (data.get("brand")) filters.brands = [data.get("brand")];
  if (data.get("price_min")) filters.price_min = Number(data.get("price_min"));
  if (data.get("price_max")) filters.price_max = Number(data.get("price_max"));
  if (data.get("in_stock")) filters.in_stock = true;
  return filters;
}

function renderShop(view) {
  const shopper = sessionStorage.getItem(SHOPPER_STORAGE) || "";
  const results = el("ul", { class: "cards", id: "results", "aria-live": "polite" });
  const summary = el("p", { class: "meta", id: "results-summary" });
  const form = el(
    "form",
    { class: "filters", id: "shop-form", role: "search" },
    el("label", {}, "Search", el("input", { type: "search", name: "query", id: "query", placeholder: "e.g. running shoes" })),
    el("label", {}, "Shopper", el("input", { name: "user_id", id: "shopper", list: "demo-shoppers", value: shopper, placeholder: "any user id" })),
    el("datalist", { id: "demo-shoppers" }, DEMO_SHOPPERS.map((name) => el("option", { value: name }))),
    el("label", {}, "Category", el("input", { name: "category", placeholder: "Home > Kitchen" })),
    el("label", {}, "Brand", el("input", { name: "brand" })),
    el("label", {}, "Price from", el("input", { name: "price_min", type: "number", min: "0", step: "any", inputmode: "decimal" })),
    el("label", {}, "to", el("input", { name: "price_max", type: "number", min: "0", step: "any", inputmode: "decimal" })),
    el("label", { class: "inline" }, el("input", { type: "checkbox", name: "in_stock" }), "In stock"),
    el("button", { type: "submit" }, "Recommend"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const query = String(data.get("query") || "").trim();
    const userId = String(data.get("user_id") || "").trim();
    sessionStorage.setItem(SHOPPER_STORAGE, userId);
    const body = { k: 10, explain: true, filters: readFilters(form) };
    if (query) body.query = query;
    if (userId) body.user_id = userId;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const answer = await api("POST", "/recommendations", body);
      clearMessages();
      summary.textContent = `${answer.items.length} products for ${userId || "a visitor"}${query ? ` searching "${query}"` : ""}`;
      results.replaceChildren(...answer.items.map(recommendationCard));
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  });
  view.replaceChildren(el("h1", {}, "Shop"), form, summary, results);
}

// ---- Product and chat ----

function readSse(buffer, onEvent) {
  const blocks = buffer.split("\n\n");
  for (const block of blocks.slice(0, -1)) {
    const lines = Object.fromEntries(
      block.split("\n").filter((line) => line.includes(": ")).map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
    );
    if (lines.event && lines.data) onEvent(lines.event, JSON.parse(lines.data));
  }
  return blocks[blocks.length - 1];
}

function chatPanel(productId) {
  let conversationId = null;
  const log = el("ol", { id: "chat-log", "aria-live": "polite" });
  const input = el("input", { name: "message", id: "chat-message", class: "wide", placeholder: "Ask about this product", autocomplete: "off" });
  const otherName = el("input", { id: "difference-name", placeholder: "another product", "aria-label": "another product" });

  async function ask(message) {
    if (!message) return;
    log.append(el("li", { class: "bubble user", text: message }));
    const answer = el("li", { class: "bubble answer", "aria-busy": "true" });
    const alternatives = el("ul", { class: "alternatives" });
    const note = el("p", { class: "meta" });
    log.append(answer);
    const userId = sessionStorage.getItem(SHOPPER_STORAGE) || undefined;
    const body = { product_id: productId, message, user_id: userId };
    if (conversationId) body.conversation_id = conversationId;
    let response;
    try {
      response = await fetch("/chat/stream", { method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
    } catch (error) {
      answer.remove();
      showError(new ApiError(0, `the service cannot be reached (${error.message})`));
      return;
    }
    if (!response.ok) {
      let parsed = null;
      try {
        parsed = await response.json();
      } catch (error) {
        parsed = null;
      }
      answer.remove();
      if (response.status === 401) showKeyForm();
      showError(new ApiError(response.status, errorMessage(parsed, response.status)));
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = readSse(buffer + decoder.decode(value, { stream: true }), (name, data) => {
        if (name === "token") answer.textContent += data.text;
        if (name === "done") {
          conversationId = data.conversation_id;
          answer.textContent = data.answer;
          answer.setAttribute("data-source", data.source);
          note.textContent = `source: ${data.source}${data.note ? ` (${data.note})` : ""}`;
          alternatives.replaceChildren(...(data.alternatives || []).map((item) => el("li", {}, productLink({ ...item.product, product_id: item.product_id }), item.product && item.product.price != null ? ` — ${money(item.product.price)}` : "")));
        }
      });
    }
    answer.removeAttribute("aria-busy");
    answer.append(note, alternatives);
    clearMessages();
  }

  const form = el("form", { class: "row", id: "chat-form" }, input, el("button", { type: "submit" }, "Ask"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = input.value.trim();
    input.value = "";
    ask(message);
  });
  const quick = el(
    "div",
    { class: "row" },
    el("button", { type: "button", class: "secondary", id: "ask-why", onclick: () => ask("Why this item?") }, "Why this item?"),
    el("button", { type: "button", class: "secondary", id: "ask-cheaper", onclick: () => ask("Anything cheaper?") }, "Anything cheaper?"),
    otherName,
    el("button", { type: "button", class: "secondary", id: "ask-difference", onclick: () => ask(`How is it different from ${otherName.value.trim() || "similar products"}?`) }, "How is it different?"),
  );
  return el("section", { class: "chat", "aria-label": "Ask about this product" }, el("h2", {}, "Ask about it"), log, quick, form);
}

async function renderProduct(view, productId) {
  view.replaceChildren(el("p", { class: "meta" }, "Loading…"));
  try {
    const { product } = await api("GET", `/products/${encodeURIComponent(productId)}`);
    const similar = await api("GET", `/products/${encodeURIComponent(productId)}/similar?k=6`);
    const attributes = Object.entries(product.attributes || {});
    const details = el(
      "section",
      { "aria-label": "Product" },
      el("h1", { id: "product-title", text: product.title }),
      el("p", { class: "meta" }, [product.category, product.brand, money(product.price), product.in_stock ? "in stock" : "out of stock"].filter(Boolean).join(" · ")),
      el("p", { id: "product-description", text: product.description || "" }),
      attributes.length
        ? el("div", { class: "table-wrap" }, el("table", {}, el("tbody", {}, attributes.map(([name, value]) => el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: String(value) }))))))
        : null,
      el("h2", {}, "Similar products"),
      el("ul", { class: "cards", id: "similar" }, similar.items.map(recommendationCard)),
    );
    clearMessages();
    view.replaceChildren(el("p", {}, el("a", { href: "#/shop" }, "← Shop")), el("div", { class: "product-layout" }, details, chatPanel(productId)));
  } catch (error) {
    view.replaceChildren(el("h1", {}, "Product"));
    showError(error);
  }
}

// ---- Imports ----

function jobView(job) {
  const total = job.total || 0;
  const done = job.state === "succeeded" || job.state === "failed";
  const percent = done ? 100 : total ? Math.min(100, Math.round((100 * job.processed) / total)) : 0;
  return el(
    "div",
    { id: "job", "data-state": job.state },
    el("p", {}, `Job ${job.job_id}: ${job.state}. ${job.processed}${total ? ` of ${total}` : ""} rows: ${job.ok} ok, ${job.failed} failed (${job.embedded} embedded, ${job.unchanged} unchanged).`),
    el("progress", { id: "job-progress", max: "100", value: String(percent), "aria-label": "import progress" }, `${percent}%`),
    el("p", { class: "meta", id: "job-percent" }, `${percent}%${job.message ? ` — ${job.message}` : ""}`),
    job.errors.length
      ? el(
          "div",
          { class: "table-wrap" },
          el(
            "table",
            { id: "row-errors" },
            el("caption", {}, "Rejected rows"),
            el("thead", {}, el("tr", {}, el("th", {}, "line"), el("th", {}, "field"), el("th", {}, "reason"))),
            el("tbody", {}, job.errors.map((error) => el("tr", {}, el("td", { text: String(error.line) }), el("td", { text: error.field || "" }), el("td", { text: error.reason })))),
          ),
        )
      : null,
  );
}

async function followJob(slot, jobId) {
  for (;;) {
    const job = await api("GET", `/imports/${encodeURIComponent(jobId)}`);
    slot.replaceChildren(jobView(job));
    if (["succeeded", "failed", "interrupted"].includes(job.state)) return;
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

function renderImports(view) {
  const slot = el("div", { id: "job-slot", "aria-live": "polite" });
  const upload = el(
    "form",
    { class: "row", id: "upload-form" },
    el("label", {}, "Catalog file", el("input", { type: "file", name: "file", id: "upload-file", accept: ".csv,.jsonl,.ndjson,.json,.parquet", required: true })),
    el("label", {}, "Format", el("select", { name: "format" }, el("option", { value: "" }, "from the name"), ["csv", "jsonl", "parquet"].map((name) => el("option", { value: name }, name)))),
    el("button", { type: "submit" }, "Upload"),
  );
  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(upload);
    if (!data.get("format")) data.delete("format");
    try {
      const accepted = await api("POST", "/imports", data);
      clearMessages();
      await followJob(slot, accepted.job_id);
    } catch (error) {
      showError(error);
    }
  });
  const fromPath = el(
    "form",
    { class: "row", id: "path-form" },
    el("label", {}, "File on the server (inside the import root)", el("input", { name: "path", class: "wide", required: true })),
    el("button", { type: "submit" }, "Import"),
  );
  fromPath.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const accepted = await api("POST", "/imports/from-path", { path: new FormData(fromPath).get("path") });
      clearMessages();
      await followJob(slot, accepted.job_id);
    } catch (error) {
      showError(error);
    }
  });
  view.replaceChildren(el("h1", {}, "Imports"), el("h2", {}, "Upload"), upload, el("h2", {}, "Server path"), fromPath, slot);
}

// ---- Models and evaluation ----

async function renderModels(view) {
  const status = el("div", { id: "model-status" });
  const report = el("div", { id: "report" });
  const train = el("button", { type: "button", id: "train" }, "Start training");
  train.addEventListener("click", async () => {
    try {
      const accepted = await api("POST", "/models/sequence/train");
      showInfo(`training started: ${accepted.task_id}`);
    } catch (error) {
      showError(error);
    }
  });
  const encoderStatus = el("div", { id: "encoder-status" });
  const tuneEncoder = el("button", { type: "button", id: "train-encoder" }, "Fine-tune the encoder");
  tuneEncoder.addEventListener("click", async () => {
    try {
      const accepted = await api("POST", "/models/encoder/train");
      showInfo(`encoder fine-tuning started: ${accepted.task_id}`);
    } catch (error) {
      showError(error);
    }
  });
  view.replaceChildren(el("h1", {}, "Models and evaluation"), el("h2", {}, "Sequence model"), status, train, el("h2", {}, "The shop's encoder"), encoderStatus, tuneEncoder, el("h2", {}, "Last evaluation"), report);
  try {
    encoderStatus.replaceChildren(...encoderDetails(await api("GET", "/models/encoder")));
  } catch (error) {
    showError(error);
  }
  try {
    const model = await api("GET", "/models/sequence");
    status.replaceChildren(
      el("p", {}, model.version === null ? "No trained model serves yet: recommendations come from the text profile." : `Version ${model.version} (${model.slot}) serves: ${model.items} items, trained ${model.trained_at}.`),
      model.training_run ? el("p", { class: "meta" }, `Training run in progress: ${model.training_run}`) : null,
      ...trainingDetails(model),
    );
  } catch (error) {
    showError(error);
  }
  let loaded;
  try {
    loaded = await api("GET", "/evaluation/report");
  } catch (error) {
    report.replaceChildren(el("p", { class: "meta", text: error.message }));
    return;
  }
  for (const [split, methods] of Object.entries(loaded.tables)) {
    const metrics = [...new Set(Object.values(methods).flatMap((values) => Object.keys(values)))].filter((name) => /ndcg|recall|mrr|coverage/.test(name));
    report.append(
      el("h3", {}, split),
      el(
        "div",
        { class: "table-wrap" },
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, el("th", {}, "method"), metrics.map((name) => el("th", { text: name })))),
          el("tbody", {}, Object.entries(methods).map(([method, values]) => el("tr", {}, el("th", { scope: "row", text: method }), metrics.map((name) => el("td", { text: typeof values[name] === "number" ? values[name].toFixed(4) : "" }))))),
        ),
      ),
    );
  }
  const plots = el("div", { class: "plots" });
  report.append(plots);
  for (const name of loaded.plots) {
    const response = await fetch(`/evaluation/plots/${encodeURIComponent(name)}`, { headers: headers() });
    if (!response.ok) continue;
    const url = URL.createObjectURL(await response.blob());
    plots.append(el("figure", {}, el("img", { src: url, alt: `evaluation plot ${name}` }), el("figcaption", { class: "meta", text: name })));
  }
}

function trainingDetails(model) {
  // What training decided: the epoch kept and why it stopped, the validation curve, the ranker's gate.
  const parts = [];
  const training = model.training || {};
  if (training.validation_curve && training.validation_curve.length) {
    parts.push(
      el("p", { id: "training-stop" }, `Sequence model: ${training.epochs_run} epochs, ${training.stopped}; the ${training.weights === "averaged" ? "moving average of the weights" : "weights"} of epoch ${training.best_epoch} serve (validation NDCG@10 ${training.validation_ndcg_at_10.toFixed(4)}).`),
      curvePlot(training.validation_curve, training.best_epoch, training.averaged_curve || [], training.weights === "averaged"),
    );
  }
  if (training.candidates && training.candidates.length > 1) {
    parts.push(table("model-selection", ["configuration", "validation NDCG@10", "epochs", "chosen"], training.candidates.map((candidate) => [candidate.name, candidate.validation_ndcg_at_10.toFixed(4), String(candidate.epochs_run), candidate.chosen ? "yes" : ""])));
  }
  const gate = model.ranker_validation || {};
  if (gate.users) {
    const serves = gate.serves || (gate.published ? "learned" : "fusion");
    // The learned ranker meets fusion on every user; a source's own order is measured on the judging users
    // only (models trained before this split measured everything there: no "judged").
    const judged = gate.judged || { learned: gate.ranker_ndcg_at_10, fusion: gate.fusion_ndcg_at_10 };
    const everyone = (score) => (gate.judged ? score.toFixed(4) : "");
    const rows = Object.entries(gate.objectives).map(([objective, score]) => [`learned ranker (${objective})`, everyone(score), objective === gate.objective ? judged.learned.toFixed(4) : "", objective === gate.objective && serves === "learned" ? "serves" : ""]);
    rows.push(["rank fusion", everyone(gate.fusion_ndcg_at_10), judged.fusion.toFixed(4), serves === "fusion" ? "serves" : ""]);
    for (const [source, score] of Object.entries(gate.sources || {})) {
      rows.push([`${source} alone (its own order)`, "", score.toFixed(4), serves === source ? "serves" : ""]);
    }
    const judges = gate.judges_apart ? `${gate.users} of them, those the sequence model was not chosen on` : `the same ${gate.users} users`;
    parts.push(
      el("p", { id: "ranker-gate-users" }, `Ranker gate, validation NDCG@10 out of fold: the learned ranker against rank fusion on all ${gate.trained_users} users, each source's own order on ${judges}: ${model.ranker}`),
      table("ranker-gate", ["ranker", `all ${gate.trained_users} users`, `${gate.users} judging users`, ""], rows),
    );
  } else if (model.ranker) {
    parts.push(el("p", { class: "meta" }, `Ranker: ${model.ranker}`));
  }
  const stages = Object.entries(model.stages || {});
  if (stages.length) {
    parts.push(
      el("p", {}, "Optional stages, measured on validation users with and without each:"),
      table("stage-gate", ["stage", "with", "without", "difference ± s.e.", "serves"], stages.map(([name, gate]) => [stageLabel(name, gate), gate.with_ndcg_at_10.toFixed(4), gate.without_ndcg_at_10.toFixed(4), `${gate.difference >= 0 ? "+" : ""}${gate.difference.toFixed(4)} ± ${gate.standard_error.toFixed(4)}`, gate.served ? (gate.gated ? "yes" : "yes (measured, not gated)") : "no: lowers validation NDCG@10"])),
    );
  }
  const tower = model.new_arrivals || {};
  if (tower.prior_weight !== undefined) parts.push(el("p", { id: "new-arrivals-choice" }, newArrivalsLine(tower)));
  return parts;
}

function newArrivalsLine(tower) {
  // The score of products without events: the prior's and the text's weights, and the text's own gate.
  const line = `New arrivals (${tower.products_without_events} products without events): popularity prior weight ${tower.prior_weight.toPrecision(3)}, text weight ${tower.text_weight.toPrecision(3)}`;
  if (tower.text_gain === null || tower.text_gain === undefined) return `${line}; the text's weight was not fitted.`;
  const gain = `${tower.text_gain >= 0 ? "+" : ""}${tower.text_gain.toFixed(4)} ± ${tower.text_gain_se.toFixed(4)}`;
  return `${line}; the text changed the held-out next products' reciprocal rank by ${gain} (users it was not fitted on): ${tower.text_weight > 0 ? "serves" : "not beyond noise, not served"}.`;
}

function stageLabel(name, gate) {
  // The LLM re-rank is measured on its own, smaller sample (one model call per user).
  const label = name.replaceAll("_", " ");
  return gate.fell_back === undefined ? label : `${label} (${gate.users} users, ${gate.fell_back} fell back)`;
}

function encoderDetails(encoder) {
  // Which text model serves, and the newest fine-tuning run's figures (published or not, and why).
  const parts = [el("p", {}, encoder.version === null ? `The configured model serves: ${encoder.serving}.` : `The shop's encoder v${encoder.version} serves: ${encoder.serving}.`)];
  if (encoder.pending) parts.push(el("p", { class: "meta" }, "A new encoder is published: the catalog is being re-embedded with it."));
  const latest = encoder.latest;
  if (latest) {
    parts.push(
      el("p", { id: "encoder-run" }, `Newest run, v${latest.version}: ${latest.published ? "published" : "not published"}: ${latest.reason}. ${latest.pairs.trained} pairs${latest.pairs.shop_searches ? ` and ${latest.pairs.shop_searches} of the shop's searches` : ""}, ${latest.steps} steps in ${Math.round(latest.seconds)} s (${latest.stopped}).`),
      table("encoder-search", ["held out / search", "before", "after"], [["held-out users' next product, NDCG@10", latest.validation.before.toFixed(4), latest.validation.after.toFixed(4)], ...Object.entries(latest.search).map(([name, figures]) => [`search precision@5: ${name} (${figures.queries} queries)`, figures.before.toFixed(3), figures.after.toFixed(3)])]),
    );
    // The served lists on the training job's validation users, without and with the new encoder.
    const gate = latest.served_gate || {};
    if (gate.with_ndcg_at_10 !== undefined) {
      parts.push(el("p", { id: "encoder-served-gate" }, `Served lists on ${gate.users} validation users, NDCG@10: ${gate.without_ndcg_at_10.toFixed(4)} before, ${gate.with_ndcg_at_10.toFixed(4)} with it (${gate.difference >= 0 ? "+" : ""}${gate.difference.toFixed(4)} ± ${gate.standard_error.toFixed(4)}): ${gate.served ? "kept" : "withdrawn"}.`));
      // How each arm's ranking was judged: a learned ranker on users it never trained on.
      if (gate.ranking) parts.push(el("p", { id: "encoder-served-ranking", class: "meta" }, `Ranking judged: ${gate.ranking.without} before, ${gate.ranking.with} with it.`));
    } else if (gate.note) {
      parts.push(el("p", { id: "encoder-served-gate", class: "meta" }, `Served lists: ${gate.note}.`));
    }
  }
  return parts;
}

function table(id, headings, rows) {
  return el(
    "div",
    { class: "table-wrap" },
    el("table", { id }, el("thead", {}, el("tr", {}, headings.map((name) => el("th", { text: name })))), el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((cell) => el("td", { text: cell })))))),
  );
}

function curvePlot(curve, bestEpoch, averaged = [], averageKept = false) {
  // Validation NDCG@10 per validated epoch, the trained weights' (solid) and their moving average's
  // (dashed); the kept epoch is marked on the curve of the weights kept.
  const width = 420, height = 160, left = 48, bottom = 24, top = 10;
  const epochs = curve.map(([epoch]) => epoch), scores = [...curve, ...averaged].map(([, score]) => score);
  const low = Math.min(...scores), high = Math.max(...scores, low + 1e-6);
  const x = (epoch) => left + ((epoch - epochs[0]) / Math.max(1, epochs[epochs.length - 1] - epochs[0])) * (width - left - 10);
  const y = (score) => top + (1 - (score - low) / (high - low)) * (height - top - bottom);
  const plot = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "curve-plot", id: "validation-curve" });
  const title = svg("title");
  title.textContent = "validation NDCG@10 per epoch";
  plot.append(title, svg("polyline", { points: curve.map(([epoch, score]) => `${x(epoch)},${y(score)}`).join(" "), fill: "none", stroke: "#3463c5", "stroke-width": 2 }));
  if (averaged.length) plot.append(svg("polyline", { points: averaged.map(([epoch, score]) => `${x(epoch)},${y(score)}`).join(" "), fill: "none", stroke: "#8a94a8", "stroke-width": 2, "stroke-dasharray": "4 3", class: "averaged-curve" }));
  const best = (averageKept ? averaged : curve).find(([epoch]) => epoch === bestEpoch);
  if (best) plot.append(svg("circle", { cx: x(best[0]), cy: y(best[1]), r: 4, fill: "#1d2433" }));
  const labels = [[left, height - 6, `epoch ${epochs[0]}`], [width - 70, height - 6, `epoch ${epochs[epochs.length - 1]}`], [0, top + 10, high.toFixed(4)], [0, height - bottom, low.toFixed(4)]];
  for (const [lx, ly, text] of labels) {
    const label = svg("text", { x: lx, y: ly, "font-size": 11, fill: "#5b6475" });
    label.textContent = text;
    plot.append(label);
  }
  return plot;
}

// ---- Rules and experiments ----

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function ctrPlot(arms) {
  // Each arm's click-through rate with its 95% interval, drawn as a bar and a whisker.
  const width = 420, rowHeight = 34, left = 110, right = 20;
  const top = Math.max(0.01, ...arms.map((arm) => arm.ctr_ci[1]));
  const x = (value) => left + (value / top) * (width - left - right);
  const plot = svg("svg", { viewBox: `0 0 ${width} ${arms.length * rowHeight + 24}`, role: "img", class: "ctr-plot" });
  const title = svg("title");
  title.textContent = "click-through rate per arm, with 95% intervals";
  plot.append(title);
  arms.forEach((arm, index) => {
    const y = index * rowHeight + 8;
    const label = svg("text", { x: 0, y: y + 16, "font-size": 13 });
    label.textContent = arm.arm;
    plot.append(
      label,
      svg("rect", { x: left, y, width: Math.max(1, x(arm.ctr) - left), height: 20, fill: "#9db8e6" }),
      svg("line", { x1: x(arm.ctr_ci[0]), x2: x(arm.ctr_ci[1]), y1: y + 10, y2: y + 10, stroke: "#1d2433", "stroke-width": 2 }),
    );
  });
  const axis = svg("text", { x: left, y: arms.length * rowHeight + 20, "font-size": 11, fill: "#5b6475" });
  axis.textContent = `0 to ${(top * 100).toFixed(1)}% of lists clicked`;
  plot.append(axis);
  return plot;
}

function interval(values, digits = 4) {
  return values ? `[${values[0].toFixed(digits)}, ${values[1].toFixed(digits)}]` : "[n/a: too few lists]";
}

async function experimentReport(name) {
  const report = await api("GET", `/experiments/${encodeURIComponent(name)}/report`);
  const rows = report.arms.map((arm) => {
    const versus = arm.difference ? arm.difference.ctr : null;
    return el(
      "tr",
      {},
      el("th", { scope: "row", text: arm.arm }),
      el("td", { text: String(arm.lists) }),
      el("td", { text: `${arm.ctr.toFixed(4)} ${interval(arm.ctr_ci)}` }),
      el("td", { text: `${arm.conversion.toFixed(4)} ${interval(arm.conversion_ci)}` }),
      el("td", { text: `${arm.revenue_per_1000.toFixed(1)} ${interval(arm.revenue_per_1000_ci, 1)}` }),
      el("td", { text: versus ? `${versus.value >= 0 ? "+" : ""}${versus.value.toFixed(4)} ${interval(versus.ci)}${versus.significant ? " (significant)" : ""}` : "control" }),
    );
  });
  return el(
    "section",
    { class: "experiment", "data-experiment": name },
    el("h3", {}, `${report.experiment} (${report.state})`),
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, ["arm", "lists", "click-through [95%]", "conversion [95%]", "revenue / 1000 lists", "CTR vs control"].map((name) => el("th", { text: name })))),
        el("tbody", {}, rows),
      ),
    ),
    ctrPlot(report.arms),
    el("p", { class: "meta", text: `attributed events: ${Object.entries(report.attribution).map(([rule, count]) => `${rule} ${count}`).join(", ") || "none yet"}` }),
  );
}

async function renderOnline(view) {
  const rulesList = el("ul", { id: "rules", class: "rules" });
  const experiments = el("div", { id: "experiments" });
  const form = el(
    "form",
    { class: "filters", id: "rule-form" },
    el("label", {}, "Action", el("select", { name: "action" }, ["pin", "block", "boost", "bury"].map((action) => el("option", { value: action }, action)))),
    el("label", {}, "Product id", el("input", { name: "product_id", required: true })),
    el("label", {}, "Position", el("input", { name: "position", type: "number", min: "1", max: "200", value: "1" })),
    el("label", {}, "Factor", el("input", { name: "factor", type: "number", min: "1", step: "any", placeholder: "boost, bury" })),
    el("label", {}, "Placement", el("input", { name: "placement", placeholder: "every placement" })),
    el("button", { type: "submit" }, "Add rule"),
  );
  async function loadRules() {
    const rules = await api("GET", "/rules");
    rulesList.replaceChildren(
      ...rules.map((rule) => {
        const remove = el("button", { type: "button", class: "secondary" }, "Delete");
        remove.addEventListener("click", async () => {
          try {
            await api("DELETE", `/rules/${encodeURIComponent(rule.rule_id)}`);
            await loadRules();
          } catch (error) {
            showError(error);
          }
        });
        const what = rule.product_id || JSON.stringify(rule.filter);
        const where = rule.placement || "every placement";
        const detail = rule.action === "pin" ? ` at ${rule.position}` : rule.factor ? ` ×${rule.factor}` : "";
        return el("li", { "data-rule-id": rule.rule_id }, el("span", { text: `${rule.action} ${what}${detail} on ${where}` }), " ", remove);
      }),
    );
    if (!rules.length) rulesList.replaceChildren(el("li", { class: "meta", text: "No rules." }));
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const action = String(data.get("action"));
    const rule = { action, product_id: String(data.get("product_id")).trim() };
    const placement = String(data.get("placement") || "").trim();
    if (placement) rule.placement = placement;
    if (action === "pin") rule.position = Number(data.get("position"));
    if (action === "boost" || action === "bury") rule.factor = Number(data.get("factor"));
    try {
      await api("POST", "/rules", rule);
      clearMessages();
      showInfo(`${action} rule added`);
      await loadRules();
    } catch (error) {
      showError(error);
    }
  });
  view.replaceChildren(el("h1", {}, "Rules and experiments"), el("h2", {}, "Merchandising rules"), form, rulesList, el("h2", {}, "Experiments"), experiments);
  try {
    await loadRules();
    const found = await api("GET", "/experiments");
    if (!found.length) experiments.replaceChildren(el("p", { class: "meta", text: "No experiments yet (POST /experiments starts one)." }));
    for (const experiment of found) experiments.append(await experimentReport(experiment.name));
  } catch (error) {
    showError(error);
  }
}

// ---- Routing and the key ----

function route() {
  const view = document.getElementById("view");
  const [, page = "shop", argument] = (location.hash || "#/shop").split("/");
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clearMessages();
  if (keysRequired && !apiKey()) {
    showKeyForm();
    view.replaceChildren(el("h1", {}, "An API key is needed"), el("p", {}, "This service asks for a key: enter one with the read scope above (imports and training need the admin scope). It is kept in this tab only."));
    return;
  }
  if (page === "product" && argument) renderProduct(view, decodeURIComponent(argument));
  else if (page === "imports") renderImports(view);
  else if (page === "models") renderModels(view);
  else if (page === "online") renderOnline(view);
  else renderShop(view);
}

async function start() {
  const form = document.getElementById("key-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = document.getElementById("key-input").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    document.getElementById("key-input").value = "";
    route();
  });
  document.getElementById("key-clear").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    route();
  });
  try {
    const config = await api("GET", "/ui/config.json");
    keysRequired = Boolean(config.keys_required);
  } catch (error) {
    showError(error);
  }
  if (keysRequired) form.hidden = false;
  window.addEventListener("hashchange", route);
  route();
}

start();
