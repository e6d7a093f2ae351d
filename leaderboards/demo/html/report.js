(function () {
  "use strict";
  function num(td) { var v = td.getAttribute("data-v"); return v === "" || v === null ? null : parseFloat(v); }
  function sortTable(table, th) {
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var type = th.getAttribute("data-type");
    var dir = th.getAttribute("data-dir");
    dir = dir ? (dir === "asc" ? "desc" : "asc") : th.getAttribute("data-better");
    var ths = th.parentNode.children;
    for (var i = 0; i < ths.length; i++) { ths[i].removeAttribute("data-dir"); ths[i].classList.remove("sorted"); }
    th.setAttribute("data-dir", dir); th.classList.add("sorted");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col], y = b.cells[col], c;
      if (type === "num") {
        var p = num(x), q = num(y);
        if (p === null && q === null) { c = 0; }
        else if (p === null) { return 1; }
        else if (q === null) { return -1; }
        else { c = dir === "asc" ? p - q : q - p; }
      } else {
        c = x.getAttribute("data-v").localeCompare(y.getAttribute("data-v"));
        if (dir === "desc") { c = -c; }
      }
      if (c === 0) { c = a.getAttribute("data-method").localeCompare(b.getAttribute("data-method")); }
      return c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.board").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th) {
      th.addEventListener("click", function () { sortTable(table, th); });
    });
  });

  // synchronised zoom and pan over every .view of the page
  var views = Array.prototype.slice.call(document.querySelectorAll(".view"));
  if (!views.length) { return; }
  var st = { s: 1, x: 0, y: 0 };
  var level = document.querySelector(".zoomlevel");
  function apply() {
    views.forEach(function (v) {
      var k = v.clientWidth / 256;
      v.querySelectorAll(".stage").forEach(function (stage) {
        stage.style.transform = "translate(" + (st.x * k) + "px," + (st.y * k) + "px) scale(" + st.s + ")";
      });
    });
    if (level) { level.textContent = st.s.toFixed(2) + "x"; }
  }
  function clamp() {
    st.s = Math.min(32, Math.max(1, st.s));
    var lim = 256 * (1 - st.s);
    st.x = Math.min(0, Math.max(lim, st.x)); st.y = Math.min(0, Math.max(lim, st.y));
  }
  function zoomAt(f, cx, cy) {
    var ns = Math.min(32, Math.max(1, st.s * f));
    st.x = cx - (cx - st.x) * ns / st.s; st.y = cy - (cy - st.y) * ns / st.s; st.s = ns;
    clamp(); apply();
  }
  var drag = null;
  views.forEach(function (v) {
    v.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = v.getBoundingClientRect(), k = 256 / r.width;
      zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, (ev.clientX - r.left) * k, (ev.clientY - r.top) * k);
    }, { passive: false });
    v.addEventListener("pointerdown", function (ev) {
      if (v.classList.contains("cmp-view") && ev.shiftKey) { return; }
      drag = { x: ev.clientX, y: ev.clientY, k: 256 / v.getBoundingClientRect().width };
      if (v.setPointerCapture) { v.setPointerCapture(ev.pointerId); }
    });
    v.addEventListener("pointermove", function (ev) {
      if (!drag) { return; }
      st.x += (ev.clientX - drag.x) * drag.k; st.y += (ev.clientY - drag.y) * drag.k;
      drag.x = ev.clientX; drag.y = ev.clientY; clamp(); apply();
    });
    v.addEventListener("pointerup", function () { drag = null; });
    v.addEventListener("dblclick", function () { st = { s: 1, x: 0, y: 0 }; apply(); });
  });
  document.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var z = b.getAttribute("data-zoom");
      if (z === "reset") { st = { s: 1, x: 0, y: 0 }; apply(); } else { zoomAt(z === "in" ? 1.5 : 1 / 1.5, 128, 128); }
    });
  });
  window.benchkitZoom = function (s, x, y) { st = { s: s, x: x, y: y }; clamp(); apply(); return st; };

  // slider comparison of any two panels
  var cmp = document.querySelector(".compare");
  if (cmp) {
    var sa = cmp.querySelector(".cmp-a"), sb = cmp.querySelector(".cmp-b");
    var ia = cmp.querySelector(".cmp-img-a"), ib = cmp.querySelector(".cmp-img-b");
    var slider = cmp.querySelector(".cmp-slider"), line = cmp.querySelector(".cmp-line");
    var clip = cmp.querySelector(".cmp-clip");
    sa.selectedIndex = parseInt(sa.getAttribute("data-default"), 10) || 0;
    sb.selectedIndex = parseInt(sb.getAttribute("data-default"), 10) || 0;
    function split() {
      var p = parseFloat(slider.value);
      clip.style.clipPath = "inset(0 " + (100 - p) + "% 0 0)";
      line.style.left = p + "%";
    }
    sa.addEventListener("change", function () { ia.src = sa.value; });
    sb.addEventListener("change", function () { ib.src = sb.value; });
    slider.addEventListener("input", split);
    split();
  }
  apply();
})();
