// Megabox uploads: drag and drop several masters, send each with the tus 1.0.0 protocol
// (see README "Uploads"), then follow its processing until the track is ready.
//
// tus: POST the release's upload endpoint with Upload-Length and Upload-Metadata, HEAD the
// upload's Location for its offset, PATCH chunks from that offset with an Upload-Checksum
// (SHA-256 by WebCrypto, where the page is a secure context). GET on the same URL gives the
// upload as JSON, with its processing progress.
(function () {
  "use strict";
  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const api = zone.dataset.api;
  const releaseId = zone.dataset.releaseId;
  const list = document.getElementById("upload-list");
  const input = zone.querySelector("input[type=file]");
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const TUS_VERSION = "1.0.0";
  const CHUNK_TYPE = "application/offset+octet-stream";
  const POLL_MS = 1000;
  const MAX_BACKOFF_MS = 30000;
  const MAX_RETRIES = 12;
  const STATUS_TEXT = { uploading: "Uploading", processing: "Processing", ready: "Ready", failed: "Failed" };
  const rows = new Map();
  const canChecksum = Boolean(window.crypto && window.crypto.subtle);

  function headers(extra) {
    return Object.assign({ "X-CSRFToken": csrf, "Accept": "application/json" }, extra || {});
  }

  function failure(status, data, fallback) {
    const error = new Error((data && data.message) || fallback || ("HTTP " + status));
    error.status = status;
    error.data = data || {};
    return error;
  }

  async function call(method, url, body, extra) {
    const response = await fetch(url, {
      method: method, credentials: "same-origin",
      headers: headers(Object.assign(body ? { "Content-Type": "application/json" } : {}, extra || {})),
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = response.status === 204 ? {} : await response.json();
    if (!response.ok) throw failure(response.status, data, response.statusText);
    return { data: data, response: response };
  }

  function base64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text);
  }

  // tus creation: the file's size and name in headers; the reply is the upload as JSON.
  async function create(file) {
    const name = base64(new TextEncoder().encode(file.name));
    const created = await call("POST", api + "/releases/" + releaseId + "/uploads", null, {
      "Tus-Resumable": TUS_VERSION, "Upload-Length": String(file.size), "Upload-Metadata": "filename " + name,
    });
    return Object.assign(created.data, { url: created.response.headers.get("Location") });
  }

  async function offsetOf(upload) {
    const response = await fetch(upload.url, {
      method: "HEAD", credentials: "same-origin", cache: "no-store", headers: headers({ "Tus-Resumable": TUS_VERSION }),
    });
    if (!response.ok) throw failure(response.status, null, response.status === 404 ? "This upload was cancelled." : null);
    return parseInt(response.headers.get("Upload-Offset"), 10);
  }

  async function checksum(blob) {
    if (!canChecksum) return null;
    const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
    return "sha256 " + base64(new Uint8Array(digest));
  }

  function row(key, name) {
    if (rows.has(key)) return rows.get(key);
    const item = document.createElement("li");
    item.className = "upload";
    item.innerHTML = '<div class="upload-head"><span class="upload-name"></span><span class="upload-status"></span></div>' +
      '<div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">' +
      '<div class="progress-bar"></div></div><p class="upload-error" hidden></p>';
    item.querySelector(".upload-name").textContent = name;
    const meter = item.querySelector(".progress");
    meter.setAttribute("aria-label", name);
    list.prepend(item);
    const view = {
      item: item,
      set: function (status, fraction, text) {
        const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
        const said = text || STATUS_TEXT[status] || status;
        item.dataset.status = status;
        item.querySelector(".upload-status").textContent = said;
        item.querySelector(".progress-bar").style.width = percent + "%";
        meter.setAttribute("aria-valuenow", String(percent));
        meter.setAttribute("aria-valuetext", said);
      },
      fail: function (message) {
        view.set("failed", 1, "Failed");
        const p = item.querySelector(".upload-error");
        p.textContent = message; p.hidden = false;
      },
    };
    rows.set(key, view);
    return view;
  }

  // One tus PATCH; resolves with the new offset (the reply's Upload-Offset).
  async function sendChunk(upload, file, offset, view) {
    const chunk = file.slice(offset, Math.min(offset + upload.chunk_size, file.size));
    const sum = await checksum(chunk);
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("PATCH", upload.url);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Tus-Resumable", TUS_VERSION);
      xhr.setRequestHeader("Upload-Offset", String(offset));
      xhr.setRequestHeader("Content-Type", CHUNK_TYPE);
      if (sum) xhr.setRequestHeader("Upload-Checksum", sum);
      xhr.upload.onprogress = function (event) {
        const pct = ((offset + event.loaded) / file.size * 100).toFixed(0);
        view.set("uploading", (offset + event.loaded) / file.size, "Uploading " + pct + "%");
      };
      xhr.onload = function () {
        if (xhr.status === 204) { resolve(parseInt(xhr.getResponseHeader("Upload-Offset"), 10)); return; }
        let data = {};
        try { data = JSON.parse(xhr.responseText || "{}"); } catch (e) { /* not JSON */ }
        reject(failure(xhr.status, data));
      };
      xhr.onerror = function () { const error = new Error("connection lost"); error.network = true; reject(error); };
      xhr.send(chunk);
    });
  }

  async function upload(file) {
    const key = file.name + ":" + file.size;
    const view = row(key, file.name);
    view.set("uploading", 0, "Starting…");
    let current;
    let offset;
    try {
      const open = (await call("GET", api + "/releases/" + releaseId + "/uploads")).data;
      current = open.find(function (u) { return u.status === "uploading" && u.filename === file.name && u.size === file.size; });
      if (current) {
        current.url = api + "/uploads/" + current.id;
        offset = await offsetOf(current);
      } else {
        current = await create(file);
        offset = 0;
      }
    } catch (error) { view.fail(error.message); return; }
    let retries = 0;
    while (offset < file.size) {
      try {
        offset = await sendChunk(current, file, offset, view);
        retries = 0;
      } catch (error) {
        // 409: another tab is sending or the offset moved; 460: the chunk was damaged on the
        // way. Both are settled by asking for the offset and sending from there again.
        const resumable = error.network || !error.status || error.status >= 500 || error.status === 409 || error.status === 460;
        if (!resumable) { view.fail(error.message); return; }
        if (++retries > MAX_RETRIES) { view.fail("The connection keeps dropping. Drop the file again to resume."); return; }
        const wait = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, retries - 1));
        view.set("uploading", offset / file.size, "Connection lost, retrying in " + Math.round(wait / 1000) + " s");
        await new Promise(function (r) { setTimeout(r, wait); });
        try { offset = await offsetOf(current); }
        catch (e) { if (e.status === 404) { view.fail(e.message); return; } /* else retry again */ }
      }
    }
    follow(current.id, view);
  }

  async function follow(uploadId, view) {
    while (true) {
      let state;
      try { state = (await call("GET", api + "/uploads/" + uploadId)).data; }
      catch (error) { await new Promise(function (r) { setTimeout(r, POLL_MS * 3); }); continue; }
      if (state.status === "processing") view.set("processing", state.progress / 100, "Processing " + state.progress + "%");
      else if (state.status === "ready") { view.set("ready", 1, "Ready"); refreshTracks(); return; }
      else if (state.status === "failed") { view.fail(state.error_message || "Processing failed."); return; }
      await new Promise(function (r) { setTimeout(r, POLL_MS); });
    }
  }

  async function refreshTracks() {
    const target = document.getElementById("studio-tracklist");
    if (!target) return;
    const response = await fetch(window.location.pathname, { credentials: "same-origin" });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("studio-tracklist");
    if (fresh) target.replaceWith(fresh);
  }

  function take(files) { Array.prototype.forEach.call(files, function (file) { upload(file); }); }

  zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("dragging"); });
  zone.addEventListener("drop", function (event) { event.preventDefault(); zone.classList.remove("dragging"); take(event.dataTransfer.files); });
  input.addEventListener("change", function () { take(input.files); input.value = ""; });

  call("GET", api + "/releases/" + releaseId + "/uploads").then(function (listed) {
    listed.data.slice().reverse().forEach(function (u) {
      const view = row(u.filename + ":" + u.size, u.filename);
      if (u.status === "processing") { view.set("processing", u.progress / 100, "Processing " + u.progress + "%"); follow(u.id, view); }
      else if (u.status === "uploading") view.set("uploading", u.received / u.size, "Interrupted at " + Math.round(u.received / u.size * 100) + "% — drop the file again to resume");
      else if (u.status === "failed") view.fail(u.error_message || "Failed");
      else view.set(u.status, 1);
    });
  });
})();
