// The lazycache viewer: browse the mirrors, open a movie, step and scrub its frames.
// Everything goes through the server's own /v1 API; the API key (from ?key=) is sent as
// X-Api-Key, so images are fetched by script and shown as blob: URLs.
"use strict";

const apiKey = new URLSearchParams(location.search).get("key");
const movieExtensions = (document.body.dataset.movieExtensions || "")
  .split(" ").filter(Boolean).map(decodeURIComponent);
const $ = (id) => document.getElementById(id);

/// Sprite tiles asked for a movie's preview strip.
const PREVIEW_TILES = 40;
const PREVIEW_WIDTH = 160;

let movie = null; // { path, meta, frame, sprite }
let shownUrl = null; // the blob: URL of the frame on screen
let frameRequest = 0; // the latest frame asked for; older answers are dropped

async function api(path, as) {
  const headers = apiKey ? { "X-Api-Key": apiKey } : {};
  const response = await fetch(path, { headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.Error) message = `${response.status}: ${body.Error}`;
    } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return as === "blob" ? response.blob() : as === "text" ? response.text() : response.json();
}

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text || "";
  status.hidden = !text;
  status.classList.toggle("error", Boolean(isError));
}

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function isMovie(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 && movieExtensions.includes(name.slice(dot + 1).toLowerCase());
}

// ---- where we are: the URL's hash holds the /v1 path and the frame ----

function place() {
  const hash = new URLSearchParams(location.hash.slice(1));
  return { path: hash.get("path") || "", frame: parseInt(hash.get("frame") || "1", 10) || 1 };
}

function linkTo(path, frame) {
  const hash = new URLSearchParams({ path });
  if (frame) hash.set("frame", String(frame));
  return `#${hash}`;
}

function showCrumbs(path) {
  const crumbs = $("crumbs");
  crumbs.replaceChildren();
  if (!path) return;
  const parts = path.replace(/^\/v1\//, "").split("/").filter(Boolean);
  let prefix = "/v1/";
  parts.forEach((part, i) => {
    const isLast = i === parts.length - 1;
    prefix += part + (isLast && !path.endsWith("/") ? "" : "/");
    crumbs.append(" / ", element("a", { href: linkTo(prefix) }, decodeURIComponent(part)));
  });
}

async function route() {
  const { path, frame } = place();
  showCrumbs(path);
  setStatus("");
  try {
    if (!path) await showMirrors();
    else if (path.endsWith("/")) await showDirectory(path);
    else if (movie && movie.path === path) await showFrame(frame);
    else await openMovie(path, frame);
  } catch (error) {
    setStatus(error.message, true);
  }
}

// ---- browsing ----

function showEntries(entries) {
  $("movie").hidden = true;
  movie = null;
  const list = $("entries");
  list.replaceChildren(...entries.map(({ kind, name, href }) => {
    const item = element("li");
    item.append(element("span", { class: "kind" }, kind), element("a", { href }, name));
    return item;
  }));
  $("browser").hidden = false;
  if (!entries.length) setStatus("This directory holds no movies.");
}

async function showMirrors() {
  const mirrors = await api("/");
  showEntries(Object.entries(mirrors).map(([url, info]) => ({
    kind: "⛁", name: url, href: linkTo(info.APIPath.V1),
  })));
}

async function showDirectory(path) {
  const listing = await api(path);
  const directories = (listing.Directories || []).map((name) => ({
    kind: "▸", name: `${name}/`, href: linkTo(`${path}${encodeURIComponent(name)}/`),
  }));
  const movies = (listing.Files || []).filter(isMovie).map((name) => ({
    kind: "▶", name, href: linkTo(`${path}${encodeURIComponent(name)}`),
  }));
  showEntries(directories.concat(movies));
}

// ---- a movie ----

async function openMovie(path, frame) {
  $("browser").hidden = true;
  const meta = await api(path);
  movie = { path, meta, frame: 0, sprite: null };
  const list = $("metadata");
  list.replaceChildren();
  for (const [name, value] of Object.entries(meta)) {
    list.append(element("dt", {}, name), element("dd", {}, String(value)));
  }
  const slider = $("slider");
  slider.max = String(meta.NumFrames);
  $("frame-number").max = String(meta.NumFrames);
  $("frame-of").textContent = `of ${meta.NumFrames}`;
  $("movie").hidden = false;
  loadSprite(movie);
  await showFrame(frame);
}

function clampFrame(n) {
  return Math.min(Math.max(1, Math.round(n) || 1), movie.meta.NumFrames);
}

function frameUrl(n) {
  return `${movie.path}/frame/${n}.jpg`;
}

async function showFrame(n) {
  if (!movie) return;
  n = clampFrame(n);
  movie.frame = n;
  $("slider").value = String(n);
  $("frame-number").value = String(n);
  const rate = movie.meta.FrameRate;
  $("frame-time").textContent = rate ? `${((n - 1) / rate).toFixed(3)} s` : "";
  showUrls(n);
  const asked = ++frameRequest;
  const blob = await api(frameUrl(n), "blob");
  if (asked !== frameRequest) return; // a later frame was asked for meanwhile
  const image = $("frame");
  const previous = shownUrl;
  shownUrl = URL.createObjectURL(blob);
  image.onload = () => {
    image.dataset.frame = String(n);
    if (previous) URL.revokeObjectURL(previous);
  };
  image.src = shownUrl;
  $("preview").hidden = true;
}

function go(n) {
  if (!movie) return;
  history.replaceState(null, "", linkTo(movie.path, clampFrame(n)));
  showFrame(n).catch((error) => setStatus(error.message, true));
}

function showUrls(n) {
  const absolute = new URL(frameUrl(n), location.href).href;
  $("frame-url").textContent = absolute;
  // The project's Python client (python/, `pip install ./python`): a numpy array, exact.
  const server = new URL("/v1", location.href).href;
  const lines = [
    ...(apiKey ? ["import os", ""] : []),
    "import lazycache",
    "",
    apiKey
      ? `lc = lazycache.Client(${JSON.stringify(server)}, api_key=os.environ["LAZYCACHE_API_KEY"])`
      : `lc = lazycache.Client(${JSON.stringify(server)})`,
    `frame = lc.frame(${JSON.stringify(movie.path.replace(/^\/v1\//, ""))}, ${n})  # height × width × 3 uint8`,
  ];
  $("python").textContent = lines.join("\n");
}

// ---- sprite previews while scrubbing ----

function parseTime(text) {
  const [h, m, s] = text.split(":");
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}

/// The cues of a sprite.vtt: [{ start, end, x, y, w, h }].
function parseVtt(text) {
  const cues = [];
  const pattern = /([\d:.]+) --> ([\d:.]+)\s*\n[^\n#]*#xywh=(\d+),(\d+),(\d+),(\d+)/g;
  for (const match of text.matchAll(pattern)) {
    const [x, y, w, h] = match.slice(3, 7).map(Number);
    cues.push({ start: parseTime(match[1]), end: parseTime(match[2]), x, y, w, h });
  }
  return cues;
}

async function loadSprite(forMovie) {
  const count = Math.min(PREVIEW_TILES, forMovie.meta.NumFrames);
  const query = `?count=${count}&width=${PREVIEW_WIDTH}`;
  try {
    const [vtt, image] = await Promise.all([
      api(`${forMovie.path}/sprite.vtt${query}`, "text"),
      api(`${forMovie.path}/sprite.jpg${query}`, "blob"),
    ]);
    if (movie !== forMovie) return;
    forMovie.sprite = { cues: parseVtt(vtt), url: URL.createObjectURL(image) };
  } catch (_) {
    // Previews are a help, not the point: scrubbing still shows exact frames on release.
  }
}

function preview(n) {
  const sprite = movie && movie.sprite;
  const rate = movie && movie.meta.FrameRate;
  if (!sprite || !rate) return;
  const seconds = (n - 1) / rate;
  const cue = sprite.cues.find((c) => c.start <= seconds && seconds < c.end)
    || sprite.cues[sprite.cues.length - 1];
  if (!cue) return;
  const tile = $("preview-tile");
  tile.style.backgroundImage = `url("${sprite.url}")`;
  tile.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
  tile.style.width = `${cue.w}px`;
  tile.style.height = `${cue.h}px`;
  $("preview-label").textContent = `frame ${n}`;
  $("preview").hidden = false;
}

// ---- wiring ----

function wire() {
  const slider = $("slider");
  slider.addEventListener("input", () => preview(Number(slider.value)));
  slider.addEventListener("change", () => go(Number(slider.value)));
  $("previous").addEventListener("click", () => go(movie.frame - 1));
  $("next").addEventListener("click", () => go(movie.frame + 1));
  $("frame-number").addEventListener("change", (event) => go(Number(event.target.value)));
  document.addEventListener("keydown", (event) => {
    if (!movie || $("movie").hidden || event.target.id === "frame-number") return;
    const step = event.shiftKey ? 10 : 1;
    const moves = {
      ArrowLeft: -step, ArrowRight: step, PageUp: -100, PageDown: 100,
      Home: -Infinity, End: Infinity,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const target = moves[event.key];
    go(Number.isFinite(target) ? movie.frame + target : target > 0 ? movie.meta.NumFrames : 1);
  });
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const text = $(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "copied";
      } catch (_) {
        button.textContent = "select and copy";
      }
      setTimeout(() => { button.textContent = "copy"; }, 1500);
    });
  }
  window.addEventListener("hashchange", route);
}

wire();
route();
