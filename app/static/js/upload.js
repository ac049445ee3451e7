// Megabox uploads: drag and drop several masters, send each in resumable chunks
// (see README "Uploads"), then follow its processing until the track is ready.
(function () {
  "use strict";
  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const api = zone.dataset.api;
  const releaseId = zone.dataset.releaseId;
  const list = document.getElementById("upload-list");
  const input = zone.querySelector("input[type=file]");
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const POLL_MS = 1000;
  const MAX_BACKOFF_MS = 30000;
  const MAX_RETRIES = 12;
  const STATUS_TEXT = { uploading: "Uploading", processing: "Processing", ready: "Ready", failed: "Failed" };
  const rows = new Map();

  function headers(extra) {
    return Object.assign({ "X-CSRFToken": csrf, "Accept": "application/json" }, extra || {});
  }

  async function call(method, url, body) {
    const response = await fetch(url, {
      method: method, credentials: "same-origin",
      headers: headers(body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = response.status === 204 ? {} : await response.json();
    if (!response.ok) { const error = new Error(data.message || response.statusText); error.data = data; error.status = response.status; throw error; }
    return data;
  }

  function row(key, name) {
    if (rows.has(key)) return rows.get(key);
    const item = document.createElement("li");
    item.className = "upload";
    item.innerHTML = '<div class="upload-head"><span class="upload-name"></span><span class="upload-status"></span></div>' +
      '<div class="progress"><div class="progress-bar"></div></div><p class="upload-error" hidden></p>';
    item.querySelector(".upload-name").textContent = name;
    list.prepend(item);
    const view = {
      item: item,
      set: function (status, fraction, text) {
        item.dataset.status = status;
        item.querySelector(".upload-status").textContent = text || STATUS_TEXT[status] || status;
        item.querySelector(".progress-bar").style.width = Math.round(Math.max(0, Math.min(1, fraction)) * 100) + "%";
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

  function sendChunk(upload, file, offset, view) {
    return new Promise(function (resolve, reject) {
      const end = Math.min(offset + upload.chunk_size, file.size);
      const xhr = new XMLHttpRequest();
      xhr.open("PATCH", api + "/uploads/" + upload.id);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Upload-Offset", String(offset));
      xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
      xhr.upload.onprogress = function (event) {
        const pct = ((offset + event.loaded) / file.size * 100).toFixed(0);
        view.set("uploading", (offset + event.loaded) / file.size, "Uploading " + pct + "%");
      };
      xhr.onload = function () {
        let data = {};
        try { data = JSON.parse(xhr.responseText || "{}"); } catch (e) { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else { const error = new Error(data.message || ("HTTP " + xhr.status)); error.data = data; error.status = xhr.status; reject(error); }
      };
      xhr.onerror = function () { const error = new Error("connection lost"); error.network = true; reject(error); };
      xhr.send(file.slice(offset, end));
    });
  }

  async function upload(file) {
    const key = file.name + ":" + file.size;
    const view = row(key, file.name);
    view.set("uploading", 0, "Starting…");
    let current;
    try {
      const open = await call("GET", api + "/releases/" + releaseId + "/uploads");
      current = open.find(function (u) { return u.status === "uploading" && u.filename === file.name && u.size === file.size; });
      if (!current) current = await call("POST", api + "/releases/" + releaseId + "/uploads", { filename: file.name, size: file.size });
    } catch (error) { view.fail(error.message); return; }
    let offset = current.received;
    let retries = 0;
    while (offset < file.size) {
      try {
        current = await sendChunk(current, file, offset, view);
        offset = current.received;
        retries = 0;
      } catch (error) {
        if (error.data && error.data.error === "offset_mismatch") { offset = error.data.details.offset; continue; }
        if (!error.network && error.status && error.status < 500) { view.fail(error.message); return; }
        if (++retries > MAX_RETRIES) { view.fail("The connection keeps dropping. Drop the file again to resume."); return; }
        const wait = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, retries - 1));
        view.set("uploading", offset / file.size, "Connection lost, retrying in " + Math.round(wait / 1000) + " s");
        await new Promise(function (r) { setTimeout(r, wait); });
        try { current = await call("GET", api + "/uploads/" + current.id); offset = current.received; } catch (e) { /* retry again */ }
      }
    }
    follow(current.id, view);
  }

  async function follow(uploadId, view) {
    while (true) {
      let state;
      try { state = await call("GET", api + "/uploads/" + uploadId); }
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

  call("GET", api + "/releases/" + releaseId + "/uploads").then(function (uploads) {
    uploads.slice().reverse().forEach(function (u) {
      const view = row(u.filename + ":" + u.size, u.filename);
      if (u.status === "processing") { view.set("processing", u.progress / 100, "Processing " + u.progress + "%"); follow(u.id, view); }
      else if (u.status === "uploading") view.set("uploading", u.received / u.size, "Interrupted at " + Math.round(u.received / u.size * 100) + "% — drop the file again to resume");
      else if (u.status === "failed") view.fail(u.error_message || "Failed");
      else view.set(u.status, 1);
    });
  });
})();
