// tracebridge flame graph: click to zoom, search, details line.
// Static text: every name it shows is read from the drawing (the <title> of
// each frame), never written into this script, so no name can inject code.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var HIGHLIGHT = "rgb(230,0,230)";
  var script = document.currentScript;
  var root = (script && script.ownerSVGElement) || document.documentElement;
  var canvas = root.querySelector(".tb-frames");
  var frames = Array.prototype.slice.call(canvas.querySelectorAll("g.f"));
  var details = root.querySelector(".tb-details").firstChild;
  var unzoomButton = root.querySelector(".tb-unzoom");
  var searchButton = root.querySelector(".tb-search");
  var regexButton = root.querySelector(".tb-regex");
  var matched = root.querySelector(".tb-matched").firstChild;
  var total = parseFloat(canvas.getAttribute("data-total"));
  var pixels = parseFloat(canvas.getAttribute("width"));
  var charWidth = parseFloat(canvas.getAttribute("data-char-width"));
  var textDown = parseFloat(canvas.getAttribute("data-text-y"));
  var slack = total * 1e-12;
  var term = null;
  var regex = true;

  // What a frame holds, read once from its attributes and its <title>:
  // name first, then "source: ...", "mangled: ..." and "module: ..." lines, counts last.
  function frame(g) {
    if (!g.tb) {
      var lines = g.firstElementChild.textContent.split("\n");
      var rect = g.querySelector("rect");
      // Searchable: the name, the symbol or address, the module, and each instance a merged box lists.
      // Its source: "source: file:line", or the first of the "N source lines:" it lists.
      var names = [lines[0]];
      var source = "";
      var listing = false;
      lines.forEach(function (line) {
        if (line.indexOf("mangled: ") === 0) names.push(line.substring(9));
        if (line.indexOf("address: ") === 0) names.push(line.substring(9));
        if (line.indexOf("module: ") === 0) names.push(line.substring(8));
        if (line.indexOf("source: ") === 0) names.push(source = line.substring(8));
        if (listing && line.indexOf("  ") === 0 && line.indexOf("  and ") !== 0) {
          names.push(line.substring(2));
          if (!source) source = line.substring(2) + ", ...";
        }
        listing = listing ? line.indexOf("  ") === 0 : / (instances, mangled|source lines):$/.test(line);
      });
      g.tb = {
        x: parseFloat(g.getAttribute("data-x")), w: parseFloat(g.getAttribute("data-w")),
        d: parseInt(g.getAttribute("data-d"), 10), rect: rect, text: g.querySelector("text"),
        fill: rect.getAttribute("fill"),
        name: lines[0], counts: lines[lines.length - 1], names: names, source: source,
        searchable: !g.classList.contains("e") && g.getAttribute("data-d") !== "0"
      };
    }
    return g.tb;
  }

  // The label that fits a frame this many pixels wide, cut with ".." as flamegraph.pl does.
  function fitted(f, width) {
    var chars = Math.floor((width - 3) / charWidth);
    if (chars < 3) return "";
    return f.name.length <= chars ? f.name : f.name.substring(0, chars - 2) + "..";
  }

  function place(g, f, x, w) {
    var xs = x.toFixed(4) + "%";
    f.rect.setAttribute("x", xs);
    f.rect.setAttribute("width", w.toFixed(4) + "%");
    var label = g.classList.contains("e") ? "" : fitted(f, w * pixels / 100);
    if (!f.text) {
      if (!label) return;
      f.text = document.createElementNS(NS, "text");
      f.text.setAttribute("dx", "3");
      f.text.setAttribute("y", parseFloat(f.rect.getAttribute("y")) + textDown);
      g.appendChild(f.text);
    }
    f.text.setAttribute("x", xs);
    f.text.textContent = label;
  }

  function zoom(g) {
    var z = frame(g);
    frames.forEach(function (e) {
      var f = frame(e);
      if (f.d < z.d && f.x <= z.x + slack && f.x + f.w >= z.x + z.w - slack) {
        e.classList.add("parent");
        e.classList.remove("hide");
        place(e, f, 0, 100);
      } else if (f.d >= z.d && f.x >= z.x - slack && f.x + f.w <= z.x + z.w + slack) {
        e.classList.remove("parent", "hide");
        place(e, f, (f.x - z.x) / z.w * 100, f.w / z.w * 100);
      } else {
        e.classList.add("hide");
      }
    });
    unzoomButton.classList.remove("hide");
  }

  function unzoom() {
    frames.forEach(function (e) {
      var f = frame(e);
      e.classList.remove("parent", "hide");
      place(e, f, f.x / total * 100, f.w / total * 100);
    });
    unzoomButton.classList.add("hide");
  }

  function matcher(text) {
    if (regex) {
      try {
        var re = new RegExp(text);
        return function (s) { return re.test(s); };
      } catch (err) {
        // Not a valid regular expression: look for the text as it is.
      }
    }
    return function (s) { return s.indexOf(text) !== -1; };
  }

  // Highlight matching frames; the share counts nested matches once.
  function search(text) {
    var test = matcher(text);
    var hits = [];
    frames.forEach(function (g) {
      var f = frame(g);
      var hit = f.searchable && f.names.some(test);
      f.rect.setAttribute("fill", hit ? HIGHLIGHT : f.fill);
      if (hit) hits.push(f);
    });
    hits.sort(function (a, b) { return a.x - b.x || a.d - b.d; });
    var sum = 0;
    var end = -Infinity;
    hits.forEach(function (f) {
      if (f.x >= end - slack) {
        sum += f.w;
        end = f.x + f.w;
      }
    });
    term = text;
    searchButton.firstChild.nodeValue = "Reset Search";
    matched.nodeValue = "Matched: " + (100 * sum / total).toFixed(1) + "% (" + hits.length +
      (hits.length === 1 ? " frame)" : " frames)");
  }

  function resetSearch() {
    frames.forEach(function (g) { var f = frame(g); f.rect.setAttribute("fill", f.fill); });
    term = null;
    searchButton.firstChild.nodeValue = "Search";
    matched.nodeValue = " ";
  }

  function askSearch() {
    var what = regex ? "regular expression" : "text";
    var text = window.prompt("Search frames for (" + what + "):", term || "");
    if (text) search(text);
  }

  canvas.addEventListener("click", function (event) {
    var g = event.target.closest("g.f");
    if (!g) return;
    if (frame(g).d === 0) unzoom(); else zoom(g);
  });
  canvas.addEventListener("mouseover", function (event) {
    var g = event.target.closest("g.f");
    if (!g) return;
    var f = frame(g);
    details.nodeValue = f.name + (f.source ? " at " + f.source : "") + " (" + f.counts + ")";
  });
  canvas.addEventListener("mouseout", function () { details.nodeValue = " "; });
  unzoomButton.addEventListener("click", unzoom);
  searchButton.addEventListener("click", function () {
    if (term === null) askSearch(); else resetSearch();
  });
  regexButton.addEventListener("click", function () {
    regex = !regex;
    regexButton.classList.toggle("off", !regex);
    if (term !== null) search(term);
  });
  window.addEventListener("keydown", function (event) {
    if (event.key === "F3" || ((event.ctrlKey || event.metaKey) && event.key === "f")) {
      event.preventDefault();
      askSearch();
    } else if (event.key === "Escape") {
      resetSearch();
    }
  });
})();
