// Megabox player: one <audio> for the page; Opus where the browser plays it, else MP3.
// Each track's waveform is drawn from its peaks; clicking the waveform seeks.
(function () {
  "use strict";
  const buttons = document.querySelectorAll(".play-button");
  if (!buttons.length) return;
  const audio = new Audio();
  audio.preload = "none";
  const opus = audio.canPlayType('audio/ogg; codecs="opus"') !== "";
  let current = null;

  function canvasFor(button) { return button.parentElement.querySelector("canvas.waveform"); }

  function draw(canvas, peaks, played) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio, height = canvas.clientHeight * ratio;
    canvas.width = width; canvas.height = height;
    const ctx = canvas.getContext("2d");
    const styles = getComputedStyle(document.documentElement);
    const bar = Math.max(1, width / peaks.length);
    for (let i = 0; i < peaks.length; i++) {
      const x = i * width / peaks.length;
      const h = Math.max(1, peaks[i] * height);
      ctx.fillStyle = (i / peaks.length) < played ? styles.getPropertyValue("--accent") : "#cfc9bd";
      ctx.fillRect(x, (height - h) / 2, bar, h);
    }
  }

  buttons.forEach(function (button) {
    const canvas = canvasFor(button);
    fetch(button.dataset.waveform, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (wave) { canvas.peaks = wave.peaks; draw(canvas, wave.peaks, 0); });
    button.addEventListener("click", function () {
      if (current === button && !audio.paused) { audio.pause(); return; }
      if (current !== button) {
        if (current) { current.setAttribute("aria-pressed", "false"); current.textContent = "▶"; }
        current = button;
        audio.src = opus ? button.dataset.opus : button.dataset.mp3;
      }
      audio.play();
    });
    canvas.addEventListener("click", function (event) {
      const fraction = event.offsetX / canvas.clientWidth;
      if (current !== button) button.click();
      const seek = function () { audio.currentTime = fraction * audio.duration; };
      if (audio.readyState >= 1) seek(); else audio.addEventListener("loadedmetadata", seek, { once: true });
    });
  });

  audio.addEventListener("play", function () { current.setAttribute("aria-pressed", "true"); current.textContent = "❚❚"; });
  audio.addEventListener("pause", function () { current.setAttribute("aria-pressed", "false"); current.textContent = "▶"; });
  audio.addEventListener("timeupdate", function () {
    const canvas = canvasFor(current);
    if (canvas && canvas.peaks && audio.duration) draw(canvas, canvas.peaks, audio.currentTime / audio.duration);
  });
})();
