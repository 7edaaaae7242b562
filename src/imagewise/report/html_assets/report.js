"use strict";
(function () {
  var el = document.getElementById("iw-data");
  if (!el) { return; }
  var data = JSON.parse(el.textContent);
  var host = document.getElementById("iw-treemap");
  var crumbs = document.getElementById("iw-treemap-crumbs");
  if (!host || !data.tree) { return; }
  var palette = ["#2f6fed", "#7c3aed", "#0e9f6e", "#d97706", "#db2777", "#0891b2", "#4b5563",
                 "#65a30d", "#b45309", "#9333ea"];

  function fmt(n) {
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return i === 0 ? n + " B" : n.toFixed(1) + " " + units[i];
  }

  // squarified treemap (Bruls, Huizing, van Wijk)
  function worst(row, w, total) {
    var s = 0, mx = 0, mn = Infinity;
    for (var i = 0; i < row.length; i++) { s += row[i].a; mx = Math.max(mx, row[i].a); mn = Math.min(mn, row[i].a); }
    var s2 = s * s, w2 = w * w;
    return Math.max(w2 * mx / s2, s2 / (w2 * mn));
  }
  function layout(items, x, y, w, h, out) {
    var total = 0, i;
    for (i = 0; i < items.length; i++) { total += items[i].s; }
    if (total <= 0) { return; }
    var scale = (w * h) / total, rest = [];
    for (i = 0; i < items.length; i++) { if (items[i].s > 0) { rest.push({ n: items[i], a: items[i].s * scale }); } }
    while (rest.length) {
      var side = Math.min(w, h), row = [rest[0]], k = 1;
      while (k < rest.length && worst(row.concat([rest[k]]), side) <= worst(row, side)) { row.push(rest[k]); k++; }
      rest = rest.slice(k);
      var area = 0;
      for (i = 0; i < row.length; i++) { area += row[i].a; }
      var thick = area / side, off = 0;
      for (i = 0; i < row.length; i++) {
        var len = row[i].a / thick;
        if (w >= h) { out.push({ n: row[i].n, x: x, y: y + off, w: thick, h: len }); }
        else { out.push({ n: row[i].n, x: x + off, y: y, w: len, h: thick }); }
        off += len;
      }
      if (w >= h) { x += thick; w -= thick; } else { y += thick; h -= thick; }
    }
  }

  var path = [data.tree];
  // start where the tree first branches: a lone "usr" box says nothing
  while (path[path.length - 1].c && path[path.length - 1].c.length === 1 &&
         path[path.length - 1].c[0].c) {
    path.push(path[path.length - 1].c[0]);
  }
  function draw() {
    var node = path[path.length - 1];
    host.textContent = "";
    crumbs.textContent = "";
    path.forEach(function (p, idx) {
      var a = document.createElement("a");
      a.textContent = idx === 0 ? "/" : p.n + "/";
      a.addEventListener("click", function () { path = path.slice(0, idx + 1); draw(); });
      crumbs.appendChild(a);
    });
    var info = document.createElement("span");
    info.className = "muted";
    info.textContent = "  " + fmt(node.s) + " in " + node.f + " files";
    crumbs.appendChild(info);
    function folded(n) { return /^\(\d+ more\)$/.test(n.n); }
    var kids = (node.c || []).slice().sort(function (a, b) {
      return (folded(a) - folded(b)) || (b.s - a.s);  // the folded rest goes last
    });
    var boxes = [];
    layout(kids, 0, 0, host.clientWidth, host.clientHeight, boxes);
    boxes.forEach(function (b, idx) {
      var d = document.createElement("div");
      d.className = "tm" + (b.n.c ? " dir" : "");
      d.style.left = b.x + "px"; d.style.top = b.y + "px";
      d.style.width = Math.max(0, b.w) + "px"; d.style.height = Math.max(0, b.h) + "px";
      d.style.background = folded(b.n) ? "#9ca3af" : palette[idx % palette.length];
      d.title = b.n.n + " - " + fmt(b.n.s) + " (" + b.n.f + " files)";
      if (b.w > 40 && b.h > 14) { d.textContent = b.n.n + (b.h > 28 ? "\n" : " ") + fmt(b.n.s); d.style.whiteSpace = "pre"; }
      if (b.n.c) { d.addEventListener("click", function () { path.push(b.n); draw(); }); }
      host.appendChild(d);
    });
  }
  draw();
  window.addEventListener("resize", draw);
}());
