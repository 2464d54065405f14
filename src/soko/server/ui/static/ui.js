// soko's web UI: pan and zoom of the lineage graph (its SVG viewBox). Nothing else needs
// script: every page works without it, and clicks on nodes are plain links.
"use strict";
(function () {
  function setup(svg) {
    const full = { x: 0, y: 0, w: parseFloat(svg.dataset.width), h: parseFloat(svg.dataset.height) };
    let box = Object.assign({}, full);
    let drag = null;
    let moved = false;
    function apply() { svg.setAttribute("viewBox", `${box.x} ${box.y} ${box.w} ${box.h}`); }
    function toUser(event) {
      const rect = svg.getBoundingClientRect();
      const scale = Math.max(box.w / rect.width, box.h / rect.height);
      return { x: box.x + (event.clientX - rect.left) * scale, y: box.y + (event.clientY - rect.top) * scale, scale: scale };
    }
    svg.addEventListener("wheel", function (event) {
      event.preventDefault();
      const at = toUser(event);
      const factor = event.deltaY < 0 ? 0.85 : 1 / 0.85;
      const w = Math.min(Math.max(box.w * factor, 50), full.w * 20);
      const ratio = w / box.w;
      box = { x: at.x - (at.x - box.x) * ratio, y: at.y - (at.y - box.y) * ratio, w: w, h: box.h * ratio };
      apply();
    }, { passive: false });
    svg.addEventListener("pointerdown", function (event) {
      drag = { x: event.clientX, y: event.clientY, box: Object.assign({}, box), scale: toUser(event).scale };
      moved = false;
    });
    window.addEventListener("pointermove", function (event) {
      if (!drag) { return; }
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (!moved && Math.abs(dx) + Math.abs(dy) < 4) { return; }
      moved = true;
      svg.classList.add("dragging");
      box.x = drag.box.x - dx * drag.scale;
      box.y = drag.box.y - dy * drag.scale;
      apply();
    });
    window.addEventListener("pointerup", function () { drag = null; svg.classList.remove("dragging"); });
    // A drag that ends on a node must not open it.
    svg.addEventListener("click", function (event) {
      if (moved) { event.preventDefault(); moved = false; }
    }, true);
    const reset = document.getElementById("zoom-reset");
    if (reset) { reset.addEventListener("click", function () { box = Object.assign({}, full); apply(); }); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("svg.lineage").forEach(setup);
  });
})();
