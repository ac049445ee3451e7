// Megabox key-in-link downloads (see app/library/keylinks.py and app/vault/FORMAT.md).
//
// The key is the link's fragment (#k=<base64url>): it is read here and never sent anywhere.
// The page fetches /d/<token>/meta (the data key wrapped under the link's key, and the
// object's 64-byte vault header) and the stored object from /d/<token>/blob, then with
// WebCrypto:
//   W   = HKDF-SHA256(ikm = K, salt = token, info = "megabox-keylink/v1")       (AES-256-GCM)
//   DEK = AES-256-GCM-Decrypt(W, wrapped[0:12], wrapped[12:], aad = header)
//   okm = HKDF-SHA256(ikm = DEK, salt = header[23:33], info = "megabox-vault/v1" ‖ header[0:48], 48 bytes)
//   okm[32:48] must equal header[48:64] (the key commitment); okm[0:32] is the segment key
//   segment i = AES-256-GCM-Decrypt(segment key, prefix ‖ u32be(i) ‖ final, aad = header)
// one segment per call, each tag checked before its bytes are kept. A failed check stops the
// download and nothing is saved: the Blob path never makes its object URL, the File System
// Access path aborts its writable, so the chosen file never receives a byte.
(function () {
  "use strict";
  const root = document.getElementById("keylink");
  if (!root) return;

  const HEADER_SIZE = 64;
  const COMMITTED_SIZE = 48;
  const TAG_SIZE = 16;
  const WRAP_NONCE_SIZE = 12;
  const KEY_SIZE = 32;
  const MAGIC = [0x4d, 0x42, 0x58, 0x56]; // "MBXV"
  const MIN_SEGMENT_LOG2 = 6;
  const MAX_SEGMENT_LOG2 = 24;
  // How often an interrupted download carries on from where it stopped, with a Range request.
  const MAX_RESUMES = 3;
  // How long the saved Blob's object URL lives, once the browser has taken the download.
  const REVOKE_URL_MS = 60000;
  const MESSAGES = {
    tampered: "This file has been tampered with or damaged; nothing was saved.",
    noKey: "This link is missing its key (the part after #k=). Ask whoever shared it for the whole link.",
    wrongKey: "The key in this link does not open this file. Check that the whole link was copied.",
    interrupted: "The download was interrupted, so nothing was saved. Try again.",
    unsupported: "This browser cannot decrypt files on this page: open the link over HTTPS in a current browser.",
  };
  const encoder = new TextEncoder();
  const LINK_INFO = encoder.encode("megabox-keylink/v1");
  const VAULT_INFO = encoder.encode("megabox-vault/v1");

  const button = document.getElementById("keylink-start");
  const statusLine = document.getElementById("keylink-status");
  const errorBox = document.getElementById("keylink-error");
  const progress = document.getElementById("keylink-progress");
  const progressBar = document.getElementById("keylink-progress-bar");
  const address = document.getElementById("keylink-address");
  if (address) address.value = location.href;

  class Tampered extends Error {}
  class Failure extends Error {}

  function fromBase64(text) {
    const standard = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = standard + "===".slice((standard.length + 3) % 4);
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function concat(a, b) {
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  // The fragment key, or null when the link lost it (or it is not 32 bytes of base64url).
  function fragmentKey() {
    const value = new URLSearchParams(location.hash.slice(1)).get("k");
    if (!value || !/^[A-Za-z0-9_-]+$/.test(value)) return null;
    try {
      const key = fromBase64(value);
      return key.length === KEY_SIZE ? key : null;
    } catch (error) {
      return null;
    }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    statusLine.textContent = "";
  }

  function showProgress(done, total) {
    const percent = total ? Math.floor((done * 100) / total) : 100;
    progress.hidden = false;
    progress.setAttribute("aria-valuenow", String(percent));
    progressBar.style.width = percent + "%";
    statusLine.textContent = "Decrypting… " + percent + "%";
  }

  async function errorMessage(response) {
    try {
      const data = await response.json();
      if (data && data.message) return data.message;
    } catch (error) {
      // Not JSON: fall through to the status line.
    }
    return "The server answered " + response.status + ". Try again later.";
  }

  // The header's fields (FORMAT.md); anything but a v1 AES-256-GCM header is refused.
  function parseHeader(header) {
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    const log2 = header[6];
    if (header.length !== HEADER_SIZE || !MAGIC.every((byte, i) => header[i] === byte) ||
        header[4] !== 1 || header[5] !== 1 || log2 < MIN_SEGMENT_LOG2 || log2 > MAX_SEGMENT_LOG2) {
      throw new Tampered();
    }
    const length = Number(view.getBigUint64(40));
    const segmentSize = 2 ** log2;
    return {
      salt: header.subarray(23, 33),
      prefix: header.subarray(33, 40),
      length: length,
      segmentSize: segmentSize,
      segments: Math.max(1, Math.ceil(length / segmentSize)),
      commitment: header.subarray(COMMITTED_SIZE, HEADER_SIZE),
    };
  }

  async function unwrapDataKey(fragment, token, wrapped, header) {
    const ikm = await crypto.subtle.importKey("raw", fragment, "HKDF", false, ["deriveKey"]);
    const wrapping = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: encoder.encode(token), info: LINK_INFO },
      ikm, { name: "AES-GCM", length: 256 }, false, ["decrypt"]);
    try {
      return new Uint8Array(await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: wrapped.subarray(0, WRAP_NONCE_SIZE), additionalData: header, tagLength: 128 },
        wrapping, wrapped.subarray(WRAP_NONCE_SIZE)));
    } catch (error) {
      throw new Failure(MESSAGES.wrongKey);
    }
  }

  async function segmentKey(dek, header, fields) {
    const ikm = await crypto.subtle.importKey("raw", dek, "HKDF", false, ["deriveBits"]);
    const okm = new Uint8Array(await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: fields.salt, info: concat(VAULT_INFO, header.subarray(0, COMMITTED_SIZE)) },
      ikm, 8 * (KEY_SIZE + TAG_SIZE)));
    if (!sameBytes(okm.subarray(KEY_SIZE), fields.commitment)) throw new Tampered();
    const key = await crypto.subtle.importKey("raw", okm.subarray(0, KEY_SIZE), "AES-GCM", false, ["decrypt"]);
    okm.fill(0);
    return key;
  }

  function nonce(prefix, index, final) {
    const out = new Uint8Array(12);
    out.set(prefix, 0);
    new DataView(out.buffer).setUint32(7, index);
    out[11] = final ? 1 : 0;
    return out;
  }

  // The stored object's bytes in order, read from one fetch and carried on with a Range
  // request (If-Range: the object's ETag) when the connection drops or the body stops short.
  class BlobSource {
    constructor(url, total, onBytes) {
      this.url = url;
      this.total = total;
      this.onBytes = onBytes;
      this.received = 0;
      this.chunks = [];
      this.buffered = 0;
      this.reader = null;
      this.etag = null;
      this.resumes = 0;
    }

    async open() {
      const headers = {};
      if (this.received) {
        headers.Range = "bytes=" + this.received + "-";
        if (this.etag) headers["If-Range"] = this.etag;
      }
      const response = await fetch(this.url, { headers: headers, cache: "no-store" });
      const expected = this.received ? 206 : 200;
      if (response.status !== expected) {
        throw new Failure(response.ok ? MESSAGES.interrupted : await errorMessage(response));
      }
      this.etag = response.headers.get("ETag");
      this.reader = response.body.getReader();
    }

    async pull() {
      for (;;) {
        try {
          if (!this.reader) await this.open();
          const next = await this.reader.read();
          // A body that ends before the object does was cut off: carry on from there.
          if (next.done && this.received < this.total) throw new Error("cut off");
          return next;
        } catch (error) {
          if (error instanceof Failure || this.resumes >= MAX_RESUMES) {
            throw error instanceof Failure ? error : new Failure(MESSAGES.interrupted);
          }
          this.resumes += 1;
          this.reader = null;
        }
      }
    }

    // Exactly ``count`` bytes, or fewer only where the object ends.
    async take(count) {
      while (this.buffered < count) {
        const next = await this.pull();
        if (next.done) break;
        this.chunks.push(next.value);
        this.buffered += next.value.length;
        this.received += next.value.length;
        this.onBytes(this.received, this.total);
      }
      const out = new Uint8Array(Math.min(count, this.buffered));
      let filled = 0;
      while (filled < out.length) {
        const chunk = this.chunks[0];
        const used = Math.min(chunk.length, out.length - filled);
        out.set(chunk.subarray(0, used), filled);
        filled += used;
        if (used === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(used);
      }
      this.buffered -= out.length;
      return out;
    }

    cancel() {
      if (this.reader) this.reader.cancel().catch(() => {});
    }
  }

  // Where plaintext goes: a file the buyer picks (File System Access) or a Blob kept in
  // memory and handed to the browser's download only once every segment has passed.
  async function fileSink(name) {
    const handle = await window.showSaveFilePicker({ suggestedName: name });
    const writable = await handle.createWritable();
    return {
      write: (bytes) => writable.write(bytes),
      finish: () => writable.close(),
      discard: () => writable.abort(),
    };
  }

  function blobSink(name, type) {
    let parts = [];
    return {
      write: (bytes) => { parts.push(bytes); },
      finish: () => {
        const url = URL.createObjectURL(new Blob(parts, { type: type }));
        parts = null;
        const anchor = document.createElement("a");
        anchor.href = url;
        anchor.download = name;
        anchor.hidden = true;
        document.body.appendChild(anchor);
        anchor.click();
        anchor.remove();
        setTimeout(() => URL.revokeObjectURL(url), REVOKE_URL_MS);
      },
      discard: () => { parts = null; },
    };
  }

  async function decryptInto(sink, meta, header, fields, key) {
    const source = new BlobSource(meta.blob_url, meta.ciphertext_size, showProgress);
    try {
      const stored = await source.take(HEADER_SIZE);
      if (!sameBytes(stored, header)) throw new Tampered();
      const last = fields.segments - 1;
      for (let index = 0; index <= last; index++) {
        const plainSize = index < last ? fields.segmentSize : fields.length - last * fields.segmentSize;
        const sealed = await source.take(plainSize + TAG_SIZE);
        if (sealed.length !== plainSize + TAG_SIZE) throw new Tampered();
        let plain;
        try {
          plain = await crypto.subtle.decrypt(
            { name: "AES-GCM", iv: nonce(fields.prefix, index, index === last), additionalData: header, tagLength: 128 },
            key, sealed);
        } catch (error) {
          throw new Tampered();
        }
        await sink.write(new Uint8Array(plain));
      }
      if ((await source.take(1)).length) throw new Tampered();
    } finally {
      source.cancel();
    }
  }

  async function prepare() {
    const fragment = fragmentKey();
    if (!fragment) throw new Failure(MESSAGES.noKey);
    const response = await fetch(root.dataset.metaUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Failure(await errorMessage(response));
    const meta = await response.json();
    const header = fromBase64(meta.header);
    const fields = parseHeader(header);
    if (fields.length !== meta.size) throw new Tampered();
    const dek = await unwrapDataKey(fragment, root.dataset.token, fromBase64(meta.wrapped_key), header);
    fragment.fill(0);
    const key = await segmentKey(dek, header, fields);
    dek.fill(0);
    return { meta: meta, header: header, fields: fields, key: key };
  }

  function report(error) {
    if (error instanceof Tampered) showError(MESSAGES.tampered);
    else if (error instanceof Failure) showError(error.message);
    else showError(MESSAGES.interrupted);
  }

  async function download(prepared) {
    const meta = prepared.meta;
    errorBox.hidden = true;
    let sink;
    try {
      sink = window.showSaveFilePicker ? await fileSink(meta.file_name) : blobSink(meta.file_name, meta.content_type);
    } catch (error) {
      // The buyer closed the save dialog.
      statusLine.textContent = "Not saved: no file was chosen.";
      return;
    }
    button.disabled = true;
    showProgress(0, meta.ciphertext_size);
    try {
      await decryptInto(sink, meta, prepared.header, prepared.fields, prepared.key);
    } catch (error) {
      await Promise.resolve(sink.discard()).catch(() => {});
      progress.hidden = true;
      report(error);
      return;
    }
    await sink.finish();
    statusLine.textContent = "Saved " + meta.file_name + ".";
    button.textContent = "Download again";
    button.disabled = false;
  }

  if (!window.crypto || !window.crypto.subtle) {
    // WebCrypto exists only on secure pages (HTTPS, or this machine).
    showError(MESSAGES.unsupported);
    return;
  }
  prepare().then((prepared) => {
    statusLine.textContent = "Ready: the file is decrypted as it downloads.";
    button.disabled = false;
    button.addEventListener("click", () => { download(prepared); });
  }, report);
})();
