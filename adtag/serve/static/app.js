// The upload page: posts the chosen video to /v1/tag and draws the answer. Text from the server is
// always set with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: "Bearer " + token } : {};
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

// Chinese (tags, OCR, ASR) is drawn with a subset of the server's CJK font, fetched for the
// characters on the page: a machine without a CJK system font would show empty boxes otherwise.
const CJK_RANGE = "U+2E80-9FFF, U+F900-FAFF, U+FE30-FE4F, U+FF00-FFEF";
const covered = new Set();
let cjkFace = null;

async function ensureFont(text) {
  const fresh = [...text].filter((c) => c.codePointAt(0) >= 0x2e80 && !covered.has(c));
  if (!fresh.length) return;
  fresh.forEach((c) => covered.add(c));
  try {
    const r = await fetch("/v1/font", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ text: [...covered].join("") }),
    });
    if (!r.ok) { fresh.forEach((c) => covered.delete(c)); return; }
    const face = new FontFace("adtag-cjk", await r.arrayBuffer(), { unicodeRange: CJK_RANGE });
    await face.load();
    document.fonts.add(face);
    if (cjkFace) document.fonts.delete(cjkFace);
    cjkFace = face;
    document.body.dataset.cjkChars = String(covered.size);
  } catch (e) {
    fresh.forEach((c) => covered.delete(c));
  }
}

async function loadModel() {
  try {
    const r = await fetch("/v1/model", { headers: authHeaders() });
    if (!r.ok) { $("model").textContent = r.status === 401 ? "enter the token to see the model" : "model: HTTP " + r.status; return; }
    const m = await r.json();
    $("model").textContent = m.tags.length + " tags · " + (m.video_uploads ? "video uploads on" : "JSON modalities only");
    ensureFont(m.tags.join(""));
  } catch (e) {
    $("model").textContent = "server unreachable";
  }
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function show(answer) {
  $("item").textContent = answer.id;
  const thumbs = $("thumbs");
  thumbs.replaceChildren(...answer.thumbnails.map((src, i) => {
    const img = el("img");
    img.src = src;  // data: URIs made by the server
    img.alt = "frame " + (i + 1);
    return img;
  }));
  $("tags").replaceChildren(...answer.tags.map((t) => {
    const li = el("li", "tag");
    const row = el("div", "tagrow");
    const bar = el("div", "bar");
    const fill = el("span");
    fill.style.width = Math.max(1, Math.round(t.score * 100)) + "%";
    bar.append(fill);
    row.append(el("span", "name", t.tag), bar, el("span", "score", t.score.toFixed(3)));
    const carried = Object.entries(t.branches)
      .sort((a, b) => b[1].share - a[1].share).slice(0, 3)
      .map(([name, b]) => name + " " + Math.round(b.share * 100) + "%").join(" · ");
    li.append(row, el("div", "branches", carried));
    return li;
  }));
  const text = $("text");
  const entries = Object.entries(answer.text);
  text.replaceChildren(...(entries.length ? entries.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]) : [el("dd", "", "(no text read)")]));
  $("timings").textContent = Object.entries(answer.timings).map(([k, v]) => k + " " + v.toFixed(2) + " s").join(" · ");
  $("result").hidden = false;
  ensureFont(answer.tags.map((t) => t.tag).join("") + Object.values(answer.text).join("") + answer.id);
}

async function submit(event) {
  event.preventDefault();
  const file = $("video").files[0];
  if (!file) { setStatus("choose a video first", true); return; }
  const form = new FormData();
  form.append("top_k", $("top_k").value || "10");
  form.append("thumbnails", "true");
  form.append("video", file, file.name);
  $("go").disabled = true;
  setStatus("tagging " + file.name + "…", false);
  try {
    const r = await fetch("/v1/tag", { method: "POST", body: form, headers: authHeaders() });
    const body = await r.json().catch(() => ({ detail: "HTTP " + r.status }));
    if (!r.ok) {
      const wait = r.headers.get("Retry-After");
      setStatus("error " + r.status + ": " + body.detail + (wait ? " (retry in " + wait + " s)" : ""), true);
      return;
    }
    show(body);
    setStatus("done", false);
  } catch (e) {
    setStatus("request failed: " + e, true);
  } finally {
    $("go").disabled = false;
  }
}

function init() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) { $("video").files = e.dataTransfer.files; }
  });
  $("upload").addEventListener("submit", submit);
  $("token").addEventListener("change", loadModel);
  loadModel();
}

init();
