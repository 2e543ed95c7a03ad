# ruff: noqa: E501  (HTML and JavaScript read better unwrapped)
"""The health server's status page: one self-contained HTML document, no external assets.

It polls ``api/state`` every 500 ms and ``api/scenes`` every 10 s, reloads ``thumbnail.jpg``
every second, and posts ``api/command``. With a token, the server has turned the ``?token=`` of
the first visit into a cookie, which the browser sends with every request the page makes (the
page never handles the token itself); a 401 says how to get the cookie again. Data from the
engine is only ever set as ``textContent`` (never parsed as HTML), so a scene or voice name
cannot inject markup. ``health`` in the header says "healthy" or how many problems there are,
and the Health section lists them (``state()["problems"]``, the sentences ``/health`` gives).

Element ids (tests use them): ``scene-name``, ``mood``, ``tempo``, ``fps``, ``frames``,
``notes``, ``lateness``, ``conn``, ``thumb``, ``features`` (rows with ``feature-<name>``),
``scene-select``, ``scene-switch``, ``mute-<voice>``, ``freeze``, ``panic``, ``tempo-input``,
``tempo-set``, ``outputs``, ``message``, ``health``, ``problems``.
"""

from sonify.commands import TEMPO_RANGE_BPM

_PAGE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sonify</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#111;color:#ddd}
header{padding:8px 14px;background:#222;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header b{font-size:18px;color:#fff}
main{display:grid;grid-template-columns:minmax(240px,360px) 1fr;gap:14px;padding:14px}
section{background:#1b1b1b;border-radius:6px;padding:10px}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:#999;margin:0 0 8px}
#thumb{width:100%;background:#000;min-height:120px;display:block}
.bar{display:grid;grid-template-columns:110px 1fr 48px;gap:6px;align-items:center;font-size:12px}
.bar div{height:8px;background:#333}.bar span.v{text-align:right}
.bar div i{display:block;height:8px;background:#6ad}
button,select,input{font:inherit;padding:4px 10px;margin:2px}
button.on{background:#a33;color:#fff}
#panic{background:#c22;color:#fff;font-weight:bold}
.bad{color:#f66}.good{color:#6d6}
#message{min-height:1.4em}
@media(max-width:700px){main{grid-template-columns:1fr}}
</style></head><body>
<header><b>sonify</b>
<span>scene <strong id="scene-name">-</strong></span>
<span>mood <strong id="mood">-</strong></span>
<span>tempo <strong id="tempo">-</strong> bpm</span>
<span><strong id="fps">-</strong> fps</span>
<span>frames <strong id="frames">-</strong></span>
<span>notes <strong id="notes">-</strong></span>
<span>lateness p99 <strong id="lateness">-</strong> ms</span>
<span id="health">-</span>
<span id="conn" class="bad">connecting</span></header>
<main>
<div>
<section><h2>Camera</h2><img id="thumb" alt="current frame"><div id="no-thumb">no picture yet</div></section>
<section><h2>Control</h2>
<div><select id="scene-select"></select><button id="scene-switch">Switch scene</button></div>
<div id="voices"></div>
<div><button id="freeze">Freeze</button> <button id="panic">PANIC</button></div>
<div><input id="tempo-input" type="number" min="@TEMPO_MIN@" max="@TEMPO_MAX@" step="1" style="width:6em">
<button id="tempo-set">Set tempo</button></div>
<div id="message"></div></section>
<section><h2>Health</h2><ul id="problems"></ul></section>
<section><h2>Outputs</h2><ul id="outputs"></ul></section>
</div>
<section><h2>Features</h2><div id="features"></div></section>
</main>
<script>
"use strict";
function url(path, extra) {
  const q = new URLSearchParams(extra || {});
  const s = q.toString();
  return path + (s ? "?" + s : "");
}
const $ = (id) => document.getElementById(id);
let state = {};
let frozen = false;
function text(id, v) { $(id).textContent = (v === undefined || v === null) ? "-" : String(v); }
function fmt(v, digits) { return typeof v === "number" ? v.toFixed(digits) : v; }
function say(msg, bad) { const m = $("message"); m.textContent = msg; m.className = bad ? "bad" : "good"; }

async function send(name, arg) {
  try {
    const r = await fetch(url("api/command"), {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: name, arg: arg})});
    const body = await r.json();
    if (r.ok) { say(name + " sent"); } else { say(body.error || ("error " + r.status), true); }
    poll();
  } catch (e) { say("could not reach the engine: " + e, true); }
}

function renderFeatures(features) {
  const box = $("features");
  const names = Object.keys(features || {});
  if (box.dataset.names !== names.join(",")) {
    box.replaceChildren();
    for (const n of names) {
      const row = document.createElement("div"); row.className = "bar"; row.dataset.name = n;
      const label = document.createElement("span"); label.textContent = n;
      const track = document.createElement("div"); const fill = document.createElement("i");
      track.appendChild(fill);
      const val = document.createElement("span"); val.className = "v";
      val.id = "feature-" + n;
      row.append(label, track, val); box.appendChild(row);
    }
    box.dataset.names = names.join(",");
  }
  for (const row of box.children) {
    const v = features[row.dataset.name];
    const num = typeof v === "number" ? v : NaN;
    row.children[1].firstChild.style.width = (isNaN(num) ? 0 : Math.max(0, Math.min(1, num)) * 100) + "%";
    row.children[2].textContent = isNaN(num) ? (v === null || v === undefined ? "-" : String(v)) : num.toFixed(3);
  }
}

function renderVoices(voices, muted) {
  const box = $("voices");
  voices = voices || []; muted = new Set(muted || []);
  if (box.dataset.names !== voices.join(",")) {
    box.replaceChildren();
    for (const v of voices) {
      const b = document.createElement("button"); b.id = "mute-" + v; b.dataset.voice = v;
      b.addEventListener("click", () => send("mute", {voice: v, muted: !b.classList.contains("on")}));
      box.appendChild(b);
    }
    box.dataset.names = voices.join(",");
  }
  for (const b of box.children) {
    const on = muted.has(b.dataset.voice);
    b.classList.toggle("on", on);
    b.textContent = (on ? "unmute " : "mute ") + b.dataset.voice;
  }
}

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
  for (const p of list) { const li = document.createElement("li"); li.textContent = p; li.className = "bad"; ul.appendChild(li); }
  if (!list.length) { const li = document.createElement("li"); li.textContent = "all well"; li.className = "good"; ul.appendChild(li); }
}

async function poll() {
  try {
    const r = await fetch(url("api/state"), {cache: "no-store"});
    if (r.status === 401) {
      $("conn").textContent = "not authorised: open this page as /?token=TOKEN"; $("conn").className = "bad";
      return;
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    state = await r.json();
    $("conn").textContent = "live"; $("conn").className = "good";
  } catch (e) {
    $("conn").textContent = "engine unreachable"; $("conn").className = "bad";
    return;
  }
  text("scene-name", state.scene); text("mood", state.mood);
  text("tempo", fmt(state.tempo_bpm, 1)); text("fps", fmt(state.fps, 1));
  text("frames", state.frames); text("notes", state.notes);
  text("lateness", fmt(state.lateness_p99_ms, 2));
  frozen = !!state.frozen;
  $("freeze").textContent = frozen ? "Unfreeze" : "Freeze";
  $("freeze").classList.toggle("on", frozen);
  renderFeatures(state.features);
  renderVoices(state.voices, state.muted);
  renderOutputs(state.outputs);
  renderProblems(state.problems);
  const sel = $("scene-select");
  if (!sel.value && state.scene) sel.value = state.scene;
}

async function loadScenes() {
  try {
    const r = await fetch(url("api/scenes"), {cache: "no-store"});
    if (!r.ok) return;
    const scenes = await r.json();
    const sel = $("scene-select"); const keep = sel.value;
    sel.replaceChildren();
    for (const s of scenes) { const o = document.createElement("option"); o.value = s; o.textContent = s; sel.appendChild(o); }
    sel.value = scenes.includes(keep) ? keep : (state.scene || "");
  } catch (e) { /* the state poll reports the connection */ }
}

const thumb = $("thumb");
thumb.addEventListener("load", () => { thumb.style.display = "block"; $("no-thumb").style.display = "none"; });
thumb.addEventListener("error", () => { thumb.style.display = "none"; $("no-thumb").style.display = "block"; });
function refreshThumb() { thumb.src = url("thumbnail.jpg", {t: Date.now()}); }

$("scene-switch").addEventListener("click", () => send("scene", $("scene-select").value));
$("panic").addEventListener("click", () => send("panic", null));
$("freeze").addEventListener("click", () => send("freeze", !frozen));
$("tempo-set").addEventListener("click", () => send("tempo", Number($("tempo-input").value)));

poll().then(loadScenes); refreshThumb();
setInterval(poll, 500);
setInterval(refreshThumb, 1000);
setInterval(loadScenes, 10000);
</script></body></html>
"""

PAGE_HTML = (_PAGE_TEMPLATE.replace("@TEMPO_MIN@", f"{TEMPO_RANGE_BPM[0]:g}")
             .replace("@TEMPO_MAX@", f"{TEMPO_RANGE_BPM[1]:g}"))
