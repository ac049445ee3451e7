// Megabox player: one <audio> for the page; Opus where the browser plays it, else MP3.
//
// - Each track's waveform is drawn from its peaks and is a slider: click it, or focus it and
//   use the arrow keys, Home and End, to seek. Progress painted on a track is cleared when
//   playback moves to another one.
// - The playing track shows "elapsed / total"; when a track ends, the next one plays.
// - Page-wide keys: space plays or pauses (unless a text field, list, button or link has the
//   focus: they have their own use for it), the left and right arrows seek 5 s.
// - Play counting: each start of a track asks the server for a play id, then sends heartbeats
//   (every 10 s while playing, at pause and end, and just after the play is due to count).
//   The server's clock decides; a counted play adds one to the track's count on the page.
// - The ad slot shows an ad once a play starts; the server records one impression for that
//   play (none without a play id: the ad still shows).
// A failing request never stops the music.
(function () {
  "use strict";
  const buttons = document.querySelectorAll(".play-button");
  if (!buttons.length) return;

  const SEEK_STEP = 5;
  const HEARTBEAT_MS = 10000;
  const DUE_MARGIN_MS = 750; // the due heartbeat goes a little after the server's threshold
  const list = document.querySelector("[data-api]");
  const api = list ? list.dataset.api : "/api/v1";
  const csrfMeta = document.querySelector("meta[name=csrf-token]");
  const csrf = csrfMeta ? csrfMeta.content : "";
  const slot = document.querySelector(".ad-slot");
  const audio = new Audio();
  audio.preload = "none";
  const opus = audio.canPlayType('audio/ogg; codecs="opus"') !== "";

  const tracks = Array.prototype.map.call(buttons, function (button) {
    const row = button.closest(".track");
    return {
      id: Number(row.dataset.trackId),
      button: button,
      canvas: row.querySelector("canvas.waveform"),
      time: row.querySelector(".track-time"),
      plays: row.querySelector(".track-plays"),
      durationSeconds: Number(row.dataset.durationMs || 0) / 1000,
      peaks: null,
    };
  });
  let current = null; // the track loaded in the audio element
  let play = null; // the play session of the current start of that track
  let needsNewPlay = true;
  let heartbeatTimer = null;

  // Time and drawing --------------------------------------------------------------------------

  // "m:ss" (or "h:mm:ss"): elapsed time counts whole seconds passed, totals are rounded as the
  // page's durations are.
  function clock(seconds, rounded) {
    const whole = Math.max(0, (rounded ? Math.round : Math.floor)(seconds || 0));
    const hours = Math.floor(whole / 3600), minutes = Math.floor(whole / 60) % 60;
    const secs = whole % 60;
    const ss = (secs < 10 ? "0" : "") + secs;
    if (hours) return hours + ":" + (minutes < 10 ? "0" : "") + minutes + ":" + ss;
    return minutes + ":" + ss;
  }

  function totalOf(track) {
    if (track === current && isFinite(audio.duration) && audio.duration > 0) return audio.duration;
    return track.durationSeconds;
  }

  function draw(track, played) {
    const canvas = track.canvas;
    if (!canvas || !track.peaks || !track.peaks.length) return;
    const peaks = track.peaks;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio, height = canvas.clientHeight * ratio;
    canvas.width = width; canvas.height = height;
    const ctx = canvas.getContext("2d");
    const styles = getComputedStyle(document.documentElement);
    const playedColour = styles.getPropertyValue("--accent").trim() || "#0f766e";
    const restColour = styles.getPropertyValue("--wave").trim() || "#cfc9bd";
    const bar = Math.max(1, width / peaks.length);
    for (let i = 0; i < peaks.length; i++) {
      const x = i * width / peaks.length;
      const h = Math.max(1, peaks[i] * height);
      ctx.fillStyle = (i / peaks.length) < played ? playedColour : restColour;
      ctx.fillRect(x, (height - h) / 2, bar, h);
    }
  }

  // Paints the track's progress, its time and its slider state at ``seconds``.
  function show(track, seconds) {
    const total = totalOf(track);
    draw(track, total ? seconds / total : 0);
    if (track.time) track.time.textContent = clock(seconds) + " / " + clock(total, true);
    if (track.canvas) {
      track.canvas.setAttribute("aria-valuemax", total.toFixed(1));
      track.canvas.setAttribute("aria-valuenow", seconds.toFixed(1));
      track.canvas.setAttribute("aria-valuetext", clock(seconds) + " of " + clock(total, true));
    }
  }

  // Back to how the page drew it: nothing played, the total time only.
  function reset(track) {
    show(track, 0);
    if (track.time) track.time.textContent = clock(track.durationSeconds, true);
    pressed(track, false);
  }

  function pressed(track, playing) {
    track.button.setAttribute("aria-pressed", playing ? "true" : "false");
    track.button.textContent = playing ? "❚❚" : "▶";
  }

  // Playback ------------------------------------------------------------------------------------

  function start() {
    const started = audio.play();
    // A refused or interrupted play (autoplay rules, a track switched meanwhile) is not an error.
    if (started && started.catch) started.catch(function () {});
  }

  function select(track) {
    if (current === track) return;
    finishPlay();
    if (current) reset(current);
    current = track;
    needsNewPlay = true;
    audio.src = opus ? track.button.dataset.opus : track.button.dataset.mp3;
    show(track, 0);
  }

  function toggle(track) {
    track = track || current || tracks[0];
    if (current === track && !audio.paused) { audio.pause(); return; }
    select(track);
    start();
  }

  function seekTo(track, seconds) {
    const go = function () {
      const total = totalOf(track);
      audio.currentTime = Math.max(0, Math.min(seconds, total || seconds));
      show(track, audio.currentTime);
    };
    if (current !== track) { select(track); start(); }
    if (audio.readyState >= 1) go();
    else audio.addEventListener("loadedmetadata", go, { once: true });
  }

  function seekBy(delta) {
    if (!current) return;
    seekTo(current, audio.currentTime + delta);
  }

  // Play counting and the ad slot ------------------------------------------------------------

  function post(url, body, options) {
    const init = {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf,
      },
      body: JSON.stringify(body),
    };
    if (options && options.keepalive) init.keepalive = true;
    return fetch(url, init)
      .then(function (response) {
        if (!response.ok) return { failed: response.status };
        return response.json();
      })
      .catch(function () { return { failed: 0 }; });
  }

  function beginPlay(track) {
    const session = { track: track, id: null, url: null, outcome: null, dueTimer: null };
    play = session;
    post(api + "/plays", { track_id: track.id }).then(function (body) {
      if (!body.failed) {
        session.id = body.id;
        session.url = body.heartbeat_url;
        settle(session, body.outcome);
        if (!session.outcome) {
          const dueMs = Math.max(0, Number(body.counts_after_seconds) * 1000) + DUE_MARGIN_MS;
          session.dueTimer = setTimeout(function () {
            if (play === session && !audio.paused) heartbeat(session);
          }, dueMs);
        }
      }
      if (play === session) showAd(session.id);
    });
  }

  function heartbeat(session, options) {
    if (!session || !session.url || session.outcome) return;
    const position = session.track === current ? audio.currentTime || 0 : 0;
    post(session.url, { position_seconds: Math.max(0, position) }, options).then(function (body) {
      if (body.failed === 410) {
        // The play expired (a long pause): the next start of playback opens a new one.
        session.url = null;
        if (play === session) needsNewPlay = true;
      } else if (!body.failed) {
        settle(session, body.outcome);
      }
    });
  }

  // An outcome is final: no more heartbeats for the play, and a counted one shows on the page.
  function settle(session, outcome) {
    if (!outcome || session.outcome) return;
    session.outcome = outcome;
    clearTimeout(session.dueTimer);
    const plays = session.track.plays;
    if (outcome === "counted" && plays) {
      const count = Number(plays.dataset.plays || 0) + 1;
      plays.dataset.plays = String(count);
      plays.textContent = count.toLocaleString("en-US") + (count === 1 ? " play" : " plays");
      plays.classList.add("just-counted");
    }
  }

  function startHeartbeats() {
    stopHeartbeats();
    heartbeatTimer = setInterval(function () { heartbeat(play); }, HEARTBEAT_MS);
  }

  function stopHeartbeats() {
    clearInterval(heartbeatTimer);
    heartbeatTimer = null;
  }

  // The current play ends (a switch of track, the end of the track): one last heartbeat.
  function finishPlay() {
    stopHeartbeats();
    if (play) {
      clearTimeout(play.dueTimer);
      heartbeat(play, { keepalive: true });
    }
    play = null;
  }

  function showAd(playId) {
    if (!slot) return;
    post(api + "/ads/impressions", { play_id: playId }).then(function (body) {
      if (body.failed || !body.ad) return;
      const ad = body.ad;
      const label = document.createElement("p");
      label.className = "ad-label";
      label.textContent = "Advertisement";
      const link = document.createElement("a");
      link.className = "ad-link";
      link.href = ad.link_url;
      link.rel = "sponsored noopener";
      link.target = "_blank";
      if (ad.image_url) {
        const image = document.createElement("img");
        image.src = ad.image_url;
        image.alt = ad.name;
        image.className = "ad-image";
        link.appendChild(image);
      } else {
        link.classList.add("ad-text");
        link.textContent = ad.name;
      }
      slot.replaceChildren(label, link);
      slot.dataset.adId = ad.id === null ? "house" : String(ad.id);
      slot.classList.add("ad-slot-filled");
    });
  }

  // Events ----------------------------------------------------------------------------------------

  tracks.forEach(function (track) {
    if (track.canvas) {
      fetch(track.button.dataset.waveform, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (wave) {
          if (!wave || !wave.peaks) return;
          track.peaks = wave.peaks;
          draw(track, track === current && audio.duration ? audio.currentTime / audio.duration : 0);
        })
        .catch(function () {});
      track.canvas.addEventListener("click", function (event) {
        const fraction = event.offsetX / track.canvas.clientWidth;
        seekTo(track, fraction * totalOf(track));
      });
      track.canvas.addEventListener("keydown", function (event) {
        const position = track === current ? audio.currentTime : 0;
        const moves = {
          ArrowRight: position + SEEK_STEP, ArrowUp: position + SEEK_STEP,
          ArrowLeft: position - SEEK_STEP, ArrowDown: position - SEEK_STEP,
          Home: 0, End: Math.max(0, totalOf(track) - 0.25),
        };
        if (!(event.key in moves) || event.altKey || event.ctrlKey || event.metaKey) return;
        event.preventDefault();
        seekTo(track, moves[event.key]);
      });
    }
    track.button.addEventListener("click", function () { toggle(track); });
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    const typing = target.closest && target.closest("input, textarea, select, [contenteditable]");
    if (event.key === " " || event.key === "Spacebar") {
      if (typing || (target.closest && target.closest("button, a"))) return;
      event.preventDefault();
      toggle(null);
    } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      if (typing || !current) return;
      event.preventDefault();
      seekBy(event.key === "ArrowRight" ? SEEK_STEP : -SEEK_STEP);
    }
  });

  audio.addEventListener("playing", function () {
    pressed(current, true);
    if (needsNewPlay) { needsNewPlay = false; beginPlay(current); }
    startHeartbeats();
  });
  audio.addEventListener("pause", function () {
    if (!current) return;
    pressed(current, false);
    stopHeartbeats();
    if (!audio.ended) heartbeat(play, { keepalive: true });
  });
  audio.addEventListener("ended", function () {
    const finished = current;
    finishPlay();
    needsNewPlay = true;
    const next = tracks[tracks.indexOf(finished) + 1];
    if (next) { select(next); start(); } else { pressed(finished, false); }
  });
  audio.addEventListener("timeupdate", function () {
    if (current) show(current, audio.currentTime);
  });
  audio.addEventListener("loadedmetadata", function () {
    if (current) show(current, audio.currentTime);
  });
  audio.addEventListener("error", function () {
    if (current) pressed(current, false);
  });
})();
