// sonify's performance page. The state comes pushed over server-sent events (api/stream, a few
// times a second); every command goes up as POST api/command {"name", "arg"} (the typed
// commands of sonify.commands). Data from the engine is only ever set as textContent or drawn
// on a canvas, never parsed as HTML. See sonify/install/health/page.py for the element ids.
"use strict";

const $ = (id) => document.getElementById(id);
const HISTORY = 60;        // feature scope points: six seconds at ten pushes a second
const ROLL_S = 8;          // seconds of notes in the piano roll
const HOLD_MS = 600;       // a control the performer touched is not moved by the state for this long
const TAP_RESET_MS = 2000; // a pause this long starts a new tap-tempo count
let state = {};
let scenes = [];
let stream = null;
const history = {};        // feature -> recent values
const touched = {};        // control id -> time it was last moved by hand
const sending = {};        // command key -> {busy, next}
let taps = [];

function text(id, v) { $(id).textContent = (v === undefined || v === null) ? "-" : String(v); }
function fmt(v, digits) { return typeof v === "number" ? v.toFixed(digits) : v; }
function say(msg, bad) { const m = $("message"); m.textContent = msg; m.className = bad ? "bad" : "good"; }
function el(tag, props, children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children || []) e.append(c);
  return e;
}
function held(id) { return touched[id] !== undefined && performance.now() - touched[id] < HOLD_MS; }
function safeId(name) { return String(name).replace(/[^A-Za-z0-9_-]/g, "_"); }
function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

// -- commands --------------------------------------------------------------------------------

async function post(name, arg) {
  const r = await fetch("api/command", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: name, arg: arg})});
  let body = {};
  try { body = await r.json(); } catch (e) { /* an empty or broken answer */ }
  if (r.ok) { say(name + " sent"); } else { say(body.error || ("error " + r.status), true); }
  return r.ok;
}

async function send(name, arg) {
  try { return await post(name, arg); }
  catch (e) { say("could not reach the engine: " + e, true); return false; }
}

// Continuous controls (sliders, pads): one request in flight per key, the latest value wins.
function sendLatest(key, name, arg) {
  const s = sending[key] || (sending[key] = {busy: false, next: null});
  s.next = [name, arg];
  if (s.busy) return;
  s.busy = true;
  (async () => {
    while (s.next) { const [n, a] = s.next; s.next = null; await send(n, a); }
    s.busy = false;
  })();
}

// -- scenes: the launch grid -----------------------------------------------------------------

function renderLaunch() {
  const box = $("launch");
  if (box.dataset.names !== scenes.join(",")) {
    box.replaceChildren();
    for (const s of scenes) {
      const b = el("button", {id: "launch-" + safeId(s), textContent: s, title: "play " + s + " at the next " + "bar"});
      b.dataset.scene = s;
      b.addEventListener("click", () => send("scene", s));
      box.appendChild(b);
    }
    box.dataset.names = scenes.join(",");
  }
  for (const b of box.children) {
    b.classList.toggle("current", b.dataset.scene === state.scene);
    b.classList.toggle("pending", b.dataset.scene === state.next_scene);
  }
  const next = state.next_scene;
  $("pending").textContent = next ? "next: " + next + (state.next_scene_bar ? " at bar " + state.next_scene_bar : "") : "";
  const last = state.last_change;
  $("landed").textContent = last ? last.scene + " came in at bar " + last.bar + " (" + last.why + ")" : "";
}

async function loadScenes() {
  try {
    const r = await fetch("api/scenes", {cache: "no-store"});
    if (!r.ok) return;
    scenes = await r.json();
    renderLaunch();
  } catch (e) { /* the stream reports the connection */ }
}

// -- parameters: sliders, XY pads, learn -----------------------------------------------------

function paramRange(name) {
  if (name === "master") return [0, 1];
  const r = (state.param_ranges || {})[name];
  return r ? r : [0, 1];
}
function paramValue(name) {
  return name === "master" ? state.master : (state.params || {})[name];
}
function sendParam(name, value) {
  if (name === "master") sendLatest("master", "master", value);
  else sendLatest("param:" + name, "param", {name: name, value: value});
}

function learnButton(target) {
  const b = el("button", {id: "learn-" + safeId(target), className: "learn", textContent: "learn", hidden: true,
                          title: "the next MIDI knob you move controls " + target});
  b.addEventListener("click", async () => { if (await send("learn", target)) say("move a MIDI knob for " + target); });
  return b;
}

function slider(name) {
  const [lo, hi] = paramRange(name);
  const id = "param-" + safeId(name);
  const input = el("input", {type: "range", id: id, min: lo, max: hi, step: "any"});
  input.dataset.param = name;
  const value = el("span", {id: id + "-value", className: "v"});
  input.addEventListener("input", () => {
    touched[id] = performance.now();
    value.textContent = Number(input.value).toFixed(2);
    sendParam(name, Number(input.value));
  });
  const row = el("div", {className: "slider"}, [el("label", {htmlFor: id, textContent: name, title: name}), input, value, learnButton(name)]);
  return row;
}

// A square pad for two parameters: x is the first, y (upwards) the second.
function pad(xName, yName) {
  const id = "pad-" + safeId(xName) + "-" + safeId(yName);
  const area = el("div", {id: id, className: "pad", title: xName + " across, " + yName + " up"});
  const dot = el("i");
  area.append(dot);
  area.dataset.x = xName; area.dataset.y = yName;
  function move(ev) {
    const r = area.getBoundingClientRect();
    const fx = clamp((ev.clientX - r.left) / r.width, 0, 1);
    const fy = clamp(1 - (ev.clientY - r.top) / r.height, 0, 1);
    const [xl, xh] = paramRange(xName), [yl, yh] = paramRange(yName);
    touched[id] = performance.now();
    place(area, fx, fy);
    sendParam(xName, xl + fx * (xh - xl));
    sendParam(yName, yl + fy * (yh - yl));
  }
  area.addEventListener("pointerdown", (ev) => { area.setPointerCapture(ev.pointerId); move(ev); ev.preventDefault(); });
  area.addEventListener("pointermove", (ev) => { if (area.hasPointerCapture(ev.pointerId)) move(ev); });
  return el("div", {className: "pad-box"}, [area, el("div", {className: "muted"}, [el("span", {textContent: "\u2192 " + xName}), el("span", {textContent: "\u2191 " + yName})])]);
}
// The dot's centre, inset by its radius so that it stays inside the pad at the edges.
function place(area, fx, fy) {
  area.firstChild.style.left = "calc(" + (fx * 100) + "% + " + ((0.5 - fx) * 22) + "px)";
  area.firstChild.style.top = "calc(" + ((1 - fy) * 100) + "% + " + ((fy - 0.5) * 22) + "px)";
}
function fraction(name) {
  const [lo, hi] = paramRange(name);
  const v = paramValue(name);
  return typeof v === "number" && hi > lo ? clamp((v - lo) / (hi - lo), 0, 1) : 0.5;
}

// The pads pair the scene's parameters; an odd one out pairs with the level.
function padPairs(names) {
  const pairs = [];
  for (let i = 0; i + 1 < names.length; i += 2) pairs.push([names[i], names[i + 1]]);
  if (names.length % 2 === 1) pairs.push([names[names.length - 1], "master"]);
  return pairs;
}

function renderParams() {
  const names = Object.keys(state.param_ranges || {});
  const key = names.map((n) => n + ":" + paramRange(n).join("..")).join(",");
  const box = $("params"), pads = $("pads");
  if (box.dataset.key !== key) {
    box.replaceChildren(...names.map(slider));
    pads.replaceChildren(...padPairs(names).map(([x, y]) => pad(x, y)));
    box.dataset.key = key;
  }
  $("no-params").hidden = names.length > 0;
  for (const input of box.querySelectorAll("input[type=range]")) {
    const v = paramValue(input.dataset.param);
    if (typeof v !== "number") continue;
    if (!held(input.id)) input.value = v;
    $(input.id + "-value").textContent = v.toFixed(2);
  }
  for (const area of pads.querySelectorAll(".pad")) {
    if (!held(area.id)) place(area, fraction(area.dataset.x), fraction(area.dataset.y));
  }
  const master = $("master");
  if (typeof state.master === "number") {
    if (!held("master")) master.value = state.master;
    $("master-value").textContent = state.master.toFixed(2);
  }
  for (const b of document.querySelectorAll("button.learn")) b.hidden = !state.learn;
}

// -- voices: mute and solo -------------------------------------------------------------------

function renderVoices() {
  const box = $("voices");
  const voices = state.voices || [];
  const muted = new Set(state.muted || []);
  if (box.dataset.names !== voices.join(",")) {
    box.replaceChildren();
    for (const v of voices) {
      const mute = el("button", {id: "mute-" + safeId(v)});
      mute.addEventListener("click", () => send("mute", {voice: v, muted: !mute.classList.contains("on")}));
      const solo = el("button", {id: "solo-" + safeId(v), className: "solo", textContent: "solo"});
      solo.addEventListener("click", () => soloVoice(v, solo.classList.contains("on")));
      const row = el("div", {className: "voice"}, [el("span", {textContent: v}), mute, solo]);
      row.dataset.voice = v;
      box.appendChild(row);
    }
    box.dataset.names = voices.join(",");
  }
  const soloed = soloVoiceNow(voices, muted);
  for (const row of box.children) {
    const v = row.dataset.voice, on = muted.has(v);
    const [, mute, solo] = row.children;
    mute.classList.toggle("on", on);
    mute.textContent = (on ? "unmute " : "mute ") + v;
    solo.classList.toggle("on", soloed === v);
  }
}
// Solo is mute for every other voice (one command per voice, as a performer would press them).
function soloVoiceNow(voices, muted) {
  const open = voices.filter((v) => !muted.has(v));
  return voices.length > 1 && open.length === 1 ? open[0] : null;
}
async function soloVoice(voice, wasOn) {
  for (const v of state.voices || []) {
    const mute = wasOn ? false : v !== voice;
    if ((state.muted || []).includes(v) !== mute) await send("mute", {voice: v, muted: mute});
  }
}

// -- tempo tap -------------------------------------------------------------------------------

function tap() {
  const now = performance.now();
  if (taps.length && now - taps[taps.length - 1] > TAP_RESET_MS) taps = [];
  taps.push(now);
  taps = taps.slice(-5);
  if (taps.length < 2) { $("tap").textContent = "Tap tempo (1)"; return; }
  const gaps = taps.slice(1).map((t, i) => t - taps[i]);
  const bpm = Math.round(600000 / (gaps.reduce((a, b) => a + b, 0) / gaps.length)) / 10;
  const [lo, hi] = [Number($("tempo-input").min), Number($("tempo-input").max)];
  $("tap").textContent = "Tap " + bpm.toFixed(1);
  if (bpm >= lo && bpm <= hi) sendLatest("tempo", "tempo", bpm);
  else say("tapped " + bpm.toFixed(1) + " bpm: outside " + lo + ".." + hi, true);
}

// -- scopes and the piano roll ---------------------------------------------------------------

function canvasSize(c) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(c.clientWidth * ratio)), h = Math.max(1, Math.round(c.clientHeight * ratio));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  return [w, h];
}

function renderFeatures() {
  const features = state.features || {};
  const names = Object.keys(features);
  const box = $("features");
  if (box.dataset.names !== names.join(",")) {
    box.replaceChildren();
    for (const n of names) {
      const row = el("div", {className: "scope"}, [el("span", {textContent: n}),
        el("canvas", {id: "scope-" + safeId(n)}), el("span", {id: "feature-" + n, className: "v"})]);
      row.dataset.name = n;
      box.appendChild(row);
    }
    box.dataset.names = names.join(",");
  }
  for (const row of box.children) {
    const n = row.dataset.name, v = features[n];
    const num = typeof v === "number" ? v : NaN;
    const h = history[n] || (history[n] = []);
    h.push(num);
    if (h.length > HISTORY) h.shift();
    row.children[2].textContent = isNaN(num) ? (v === null || v === undefined ? "-" : String(v)) : num.toFixed(3);
    drawScope(row.children[1], h);
  }
}

function drawScope(c, values) {
  const [w, h] = canvasSize(c);
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#6ad"; g.lineWidth = Math.max(1, h / 20);
  g.beginPath();
  let pen = false;
  values.forEach((v, i) => {
    if (isNaN(v)) { pen = false; return; }
    const x = (i + HISTORY - values.length) / (HISTORY - 1) * w, y = (1 - clamp(v, 0, 1)) * (h - 2) + 1;
    if (pen) g.lineTo(x, y); else g.moveTo(x, y);
    pen = true;
  });
  g.stroke();
}

const VOICE_COLOURS = ["#6ad", "#e96", "#9d6", "#d6d", "#dd6", "#6dd", "#f66", "#aaa"];
function drawRoll() {
  const c = $("roll");
  const [w, h] = canvasSize(c);
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, h);
  const notes = state.recent_notes || [];
  const now = typeof state.clock_s === "number" ? state.clock_s : 0;
  const voices = state.voices || [];
  const nowX = w * 0.85;  // the future (notes scheduled ahead) to the right of the line
  const pxPerS = nowX / ROLL_S;
  let lo = 127, hi = 0;
  for (const n of notes) { lo = Math.min(lo, n[2]); hi = Math.max(hi, n[2]); }
  if (lo > hi) { lo = 48; hi = 72; }
  lo = Math.max(0, lo - 2); hi = Math.min(127, Math.max(hi + 2, lo + 12));
  const rowH = h / (hi - lo + 1);
  g.fillStyle = "#161616";
  for (let p = lo; p <= hi; p++) if ([1, 3, 6, 8, 10].includes(p % 12)) g.fillRect(0, h - (p - lo + 1) * rowH, w, rowH);
  for (const [t, d, p, vel, voice] of notes) {
    const x = nowX + (t - now) * pxPerS;
    const idx = voices.indexOf(voice);
    g.fillStyle = VOICE_COLOURS[(idx < 0 ? voices.length : idx) % VOICE_COLOURS.length];
    g.globalAlpha = 0.35 + 0.65 * vel / 127;
    g.fillRect(x, h - (p - lo + 1) * rowH, Math.max(2, d * pxPerS), Math.max(2, rowH - 1));
  }
  g.globalAlpha = 1;
  g.fillStyle = "#fff"; g.fillRect(nowX, 0, 1, h);
  c.dataset.notes = String(notes.length);
}

// -- the rest of the state -------------------------------------------------------------------

function renderOutputs(outputs) {
  const ul = $("outputs"); ul.replaceChildren();
  for (const o of outputs || []) {
    const li = document.createElement("li");
    if (typeof o === "string") { li.textContent = o; }
    else {
      li.textContent = o.name + (o.problem ? ": " + o.problem : o.connected === false ? " (waiting)" : "") +
        (o.dropped ? ", " + o.dropped + " dropped" : "");
      li.className = o.connected === false || o.problem ? "bad" : "good";
    }
    ul.appendChild(li);
  }
}

function renderProblems(problems) {
  const list = problems || [];
  $("health").textContent = list.length ? list.length + (list.length === 1 ? " problem" : " problems") : "healthy";
  $("health").className = list.length ? "bad" : "good";
  const ul = $("problems"); ul.replaceChildren();
  for (const p of list) ul.appendChild(el("li", {textContent: p, className: "bad"}));
  if (!list.length) ul.appendChild(el("li", {textContent: "all well", className: "good"}));
}

// Mapping by example (the scene's [teach]): record, train, run; hidden for a scene without one.
function renderTeach() {
  const t = state.teach;
  $("teach-box").hidden = !t;
  if (!t) return;
  $("teach-record").textContent = t.recording ? "Stop recording" : "Record";
  $("teach-record").classList.toggle("on", !!t.recording);
  $("teach-run").textContent = t.running ? "Stop running" : "Run";
  $("teach-run").classList.toggle("on", !!t.running);
  $("teach-run").disabled = !t.model;
  const model = t.model ? t.model.algorithm + " on " + t.model.examples + " examples (" + t.model.trained_at + ")" : "none yet";
  const parts = [t.examples + " examples", "model: " + model, "outputs: " + t.outputs.join(", ")];
  if (t.training) parts.push("training...");
  if (t.message) parts.push(t.message);
  if (t.error) parts.push("error: " + t.error);
  text("teach-status", parts.join(" · "));
}

function render() {
  text("scene-name", state.scene); text("mood", state.mood);
  text("tempo", fmt(state.tempo_bpm, 1)); text("fps", fmt(state.fps, 1));
  text("frames", state.frames); text("notes", state.notes);
  text("lateness", fmt(state.lateness_p99_ms, 2));
  const bpb = state.beats_per_bar;
  text("position", typeof state.bar === "number" && bpb ? state.bar + "." + (Math.floor(state.beat - (state.bar - 1) * bpb) + 1) : null);
  $("freeze").textContent = state.frozen ? "Unfreeze" : "Freeze";
  $("freeze").classList.toggle("on", !!state.frozen);
  renderLaunch();
  renderTeach();
  renderParams();
  renderVoices();
  renderFeatures();
  drawRoll();
  renderOutputs(state.outputs);
  renderProblems(state.problems);
}

function live(yes, why) {
  $("conn").textContent = yes ? "live" : why;
  $("conn").className = yes ? "good" : "bad";
}

// The stream breaks when the engine stops or the token is refused: ask plainly which it is.
async function diagnose() {
  try {
    const r = await fetch("api/state", {cache: "no-store"});
    if (r.status === 401) { live(false, "not authorised: open this page as /?token=TOKEN"); stream.close(); }
    else if (!r.ok) live(false, "engine error: HTTP " + r.status);
  } catch (e) { live(false, "engine unreachable"); }
}

function connect() {
  stream = new EventSource("api/stream");
  stream.onmessage = (ev) => {
    state = JSON.parse(ev.data);
    live(true);
    render();
  };
  stream.addEventListener("problem", (ev) => { live(false, "engine: " + JSON.parse(ev.data).error); });
  stream.onerror = () => { diagnose(); };
}

const thumb = $("thumb");
thumb.addEventListener("load", () => { thumb.hidden = false; $("no-thumb").hidden = true; });
thumb.addEventListener("error", () => { thumb.hidden = true; $("no-thumb").hidden = false; });
function refreshThumb() { thumb.src = "thumbnail.jpg?t=" + Date.now(); }

$("panic").addEventListener("click", () => send("panic", null));
$("freeze").addEventListener("click", () => send("freeze", !state.frozen));
$("tempo-set").addEventListener("click", () => send("tempo", Number($("tempo-input").value)));
$("tap").addEventListener("click", tap);
$("teach-record").addEventListener("click", () => send("teach", state.teach && state.teach.recording ? "stop_recording" : "record"));
$("teach-snapshot").addEventListener("click", () => send("teach", "snapshot"));
$("teach-train").addEventListener("click", () => send("teach", "train"));
$("teach-run").addEventListener("click", () => send("teach", state.teach && state.teach.running ? "stop_running" : "run"));
$("teach-clear").addEventListener("click", () => { if (confirm("Delete every example?")) send("teach", "clear"); });
$("master").addEventListener("input", () => { touched.master = performance.now(); sendParam("master", Number($("master").value)); });
for (const target of ["tempo", "master"]) {
  $("learn-" + target).addEventListener("click", async () => { if (await send("learn", target)) say("move a MIDI knob for " + target); });
}

loadScenes();
connect();
refreshThumb();
setInterval(refreshThumb, 1000);
setInterval(loadScenes, 10000);
