// d2f app: the page's behaviour. The controls are built from /api/config (d2f.options), never listed here.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  config: null,
  photo: null,        // {id, name, width, height}
  values: {},         // options the user set, by name (the others keep their defaults)
  view: "result",
  split: 0.5,         // before/after divider, fraction of the width
  inFlight: false,
  pending: false,
  resultUrl: null,
};

// ------------------------------------------------------------------------------------------ messages

function say(text, kind = "note") {
  const message = $("message");
  message.textContent = text;
  message.className = kind;
  message.hidden = !text;
}

async function errorOf(response) {
  try {
    return (await response.json()).error || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function setBusy(busy) {
  document.body.dataset.busy = busy ? "1" : "0";
}

// ------------------------------------------------------------------------------------------ controls

function decimals(step) {
  const text = String(step);
  return text.includes(".") ? text.split(".")[1].length : 0;
}

function buildControls() {
  const box = $("controls");
  for (const option of state.config.options) {
    if (option.kind === "point") continue; // a point is set by clicking on the photo
    const row = document.createElement("div");
    row.className = "option" + (option.supported ? "" : " unsupported");
    row.title = option.help;
    const id = `option-${option.name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = option.label;
    const input = document.createElement("input");
    input.id = id;
    input.name = option.name;
    if (option.slider) {
      const [low, high, step] = option.slider;
      Object.assign(input, { type: "range", min: low, max: high, step });
    } else {
      input.type = "number";
      if (option.minimum !== null) input.min = option.minimum;
      if (option.maximum !== null) input.max = option.maximum;
      input.step = option.kind === "integer" ? 1 : "any";
    }
    const shown = document.createElement("output");
    shown.htmlFor = id;
    const reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = "↺";
    reset.title = "back to the default";
    const places = option.slider ? decimals(option.slider[2]) : 2;
    const show = () => {
      const value = state.values[option.name];
      shown.textContent = value === undefined
        ? (option.default === null ? "auto" : Number(option.default).toFixed(places))
        : Number(value).toFixed(places);
    };
    const setDefault = () => {
      if (option.default !== null) input.value = option.default;
      else if (option.slider) input.value = option.slider[0];
    };
    setDefault();
    show();
    let previous = Number(input.value);
    input.addEventListener("input", () => {
      let value = Number(input.value);
      if (option.allowed && !option.allowed.includes(value)) {
        // Skip invalid values in the direction of the move (aperture blades: 0 round, then 3-12).
        const ahead = option.allowed.filter((allowed) => (value > previous ? allowed > value : allowed < value));
        value = ahead.length ? (value > previous ? Math.min(...ahead) : Math.max(...ahead)) : previous;
        input.value = value;
      }
      previous = value;
      if (input.type === "number" && input.value === "") delete state.values[option.name];
      else state.values[option.name] = value;
      show();
      requestPreview();
    });
    reset.addEventListener("click", () => {
      delete state.values[option.name];
      setDefault();
      previous = Number(input.value);
      show();
      requestPreview();
    });
    if (!option.supported) {
      input.disabled = reset.disabled = true;
    }
    row.append(label, input, shown, reset);
    if (!option.supported) {
      const note = document.createElement("span");
      note.className = "note";
      note.textContent = "needs a model that predicts depth (this one predicts defocus)";
      row.append(note);
    }
    box.append(row);
  }
}

function focusOption() {
  return state.config.options.find((option) => option.kind === "point");
}

// -------------------------------------------------------------------------------------------- photos

async function loadPhoto(request) {
  say("Loading…");
  setBusy(true);
  try {
    const response = await request;
    if (!response.ok) {
      say(await errorOf(response), "error");
      return;
    }
    state.photo = await response.json();
    delete state.values.focus;
    $("focus-marker").hidden = true;
    $("download").hidden = true;
    $("progress").hidden = true;
    $("stage").textContent = "";
    const before = $("before");
    before.src = `/api/photo/${state.photo.id}/before`;
    before.hidden = false;
    $("compare-before").src = before.src;
    for (const empty of document.querySelectorAll(".empty")) empty.hidden = true;
    $("render-full").disabled = false;
    say(`${state.photo.name}: ${state.photo.width}×${state.photo.height}. ` +
        "Click the photo to set the focus; drag the sliders.");
    requestPreview();
  } catch (error) {
    say(`Could not reach d2f app: ${error}`, "error");
  } finally {
    setBusy(state.inFlight);
  }
}

function uploadFile(file) {
  const name = encodeURIComponent(file.name || "upload");
  loadPhoto(fetch(`/api/photo?name=${name}`, { method: "POST", body: file }));
}

// ------------------------------------------------------------------------------------------- preview

function optionValues() {
  return { ...state.values };
}

// One request at a time; moves made meanwhile are folded into the next one (the latest values win).
async function requestPreview() {
  if (!state.photo) return;
  if (state.inFlight) {
    state.pending = true;
    return;
  }
  state.inFlight = true;
  state.pending = false;
  setBusy(true);
  try {
    const view = state.view === "defocus" ? "defocus" : "result";
    const response = await fetch("/api/preview", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ photo: state.photo.id, options: optionValues(), view }),
    });
    if (!response.ok) {
      say(await errorOf(response), "error");
    } else {
      const seconds = response.headers.get("X-Render-Seconds");
      showResult(URL.createObjectURL(await response.blob()));
      $("status").textContent = `preview rendered in ${seconds} s`;
      $("download").hidden = true;
    }
  } catch (error) {
    say(`Could not reach d2f app: ${error}`, "error");
  } finally {
    state.inFlight = false;
    if (state.pending) requestPreview();
    else setBusy(false);
  }
}

function showResult(url) {
  const result = $("result");
  if (state.resultUrl && state.resultUrl.startsWith("blob:")) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = url;
  result.onload = () => {
    result.dataset.seq = String(Number(result.dataset.seq) + 1);
    layoutCompare();
  };
  result.src = url;
  result.hidden = false;
}

// ----------------------------------------------------------------------------- before/after and view

function layoutCompare() {
  const result = $("result");
  const compare = state.view === "compare" && !result.hidden;
  const before = $("compare-before");
  const divider = $("divider");
  before.hidden = divider.hidden = !compare;
  if (!compare) return;
  before.style.left = `${result.offsetLeft}px`;
  before.style.top = `${result.offsetTop}px`;
  before.style.width = `${result.clientWidth}px`;
  before.style.height = `${result.clientHeight}px`;
  before.style.clipPath = `inset(0 ${(1 - state.split) * 100}% 0 0)`;
  divider.style.left = `${result.offsetLeft + state.split * result.clientWidth}px`;
}

function moveSplit(event) {
  if (state.view !== "compare") return;
  const box = $("result").getBoundingClientRect();
  state.split = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  layoutCompare();
}

// ------------------------------------------------------------------------------------------- focus

function clickPhoto(event) {
  if (!state.photo) return;
  const image = $("before");
  const x = Math.round((event.offsetX / image.clientWidth) * state.photo.width);
  const y = Math.round((event.offsetY / image.clientHeight) * state.photo.height);
  const option = focusOption();
  if (!option || !option.supported) {
    say(`Focus at ${x}, ${y}: this model predicts defocus, not depth, so it keeps its own focus and ` +
        "cannot move it to a point; the click changes nothing. A model that predicts depth focuses " +
        "where you click.", "note");
    return;
  }
  state.values[option.name] = [x, y];
  const marker = $("focus-marker");
  marker.style.left = `${image.offsetLeft + event.offsetX}px`;
  marker.style.top = `${image.offsetTop + event.offsetY}px`;
  marker.hidden = false;
  say(`Focus at ${x}, ${y}.`);
  requestPreview();
}

// ------------------------------------------------------------------------------- full resolution

async function renderFull() {
  if (!state.photo) return;
  const button = $("render-full");
  const progress = $("progress");
  button.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  $("download").hidden = true;
  setBusy(true);
  try {
    const response = await fetch("/api/render", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ photo: state.photo.id, options: optionValues() }),
    });
    if (!response.ok) {
      say(await errorOf(response), "error");
      return;
    }
    const { job } = await response.json();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const poll = await fetch(`/api/job/${job}`);
      if (!poll.ok) {
        say(await errorOf(poll), "error");
        return;
      }
      const status = await poll.json();
      progress.value = status.progress;
      $("stage").textContent = status.stage;
      if (status.error) {
        say(status.error, "error");
        return;
      }
      if (status.done) {
        const link = $("download");
        link.href = `/api/job/${job}/download`;
        link.download = status.filename;
        link.textContent = `Download ${status.filename}`;
        link.hidden = false;
        if (state.view !== "defocus") showResult(link.href);
        $("status").textContent = "full-resolution result";
        return;
      }
    }
  } catch (error) {
    say(`Could not reach d2f app: ${error}`, "error");
  } finally {
    button.disabled = false;
    setBusy(state.inFlight);
  }
}

// ------------------------------------------------------------------------------------------- start

async function start() {
  const response = await fetch("/api/config");
  state.config = await response.json();
  buildControls();
  const option = focusOption();
  if (!option || !option.supported) {
    $("focus-hint").textContent = "this model keeps its own focus (it predicts defocus, not depth)";
  }
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) uploadFile(event.target.files[0]);
    event.target.value = "";
  });
  $("sample").addEventListener("click", () => loadPhoto(fetch("/api/sample", { method: "POST" })));
  $("before").addEventListener("click", clickPhoto);
  $("render-full").addEventListener("click", renderFull);
  $("result-box").addEventListener("pointermove", moveSplit);
  $("result-box").addEventListener("pointerdown", moveSplit);
  window.addEventListener("resize", layoutCompare);
  for (const radio of document.querySelectorAll('input[name="view"]')) {
    radio.addEventListener("change", () => {
      const previous = state.view;
      state.view = radio.value;
      layoutCompare();
      if (previous === "defocus" || state.view === "defocus") requestPreview();
    });
  }
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (file) uploadFile(file);
  });
}

start().catch((error) => say(`d2f app failed to start: ${error}`, "error"));
