// The dashboard's one chart helper: every <script type="application/json" class="time-series"> becomes a uPlot
// chart in its parent element. Its JSON: {"x": [unix seconds], "y": "axis label", "log": true for a base-10 y axis
// (optional), "series": [{"label": "…", "values": [numbers or null]}]}; "time": false makes x plain numbers
// (ascending), labelled "x_label".
(function () {
  "use strict";
  var COLOURS = ["#0b2545", "#a00", "#0a6b0a", "#7a4b00", "#5a2d82"];

  function powerOfTen(u, values) {
    return values.map(function (v) { return v == null ? "" : v.toExponential(0); });
  }

  function draw(script) {
    var data = JSON.parse(script.textContent);
    var holder = document.createElement("div");
    script.parentNode.appendChild(holder);
    var series = data.series.map(function (s, i) {
      return { label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2 };
    });
    var options = {
      width: Math.max(320, Math.min(script.parentNode.clientWidth || 800, 1100)),
      height: 260,
      series: [data.time === false ? { label: data.x_label || "x" } : {}].concat(series),
      scales: Object.assign({ x: { time: data.time !== false } }, data.log ? { y: { distr: 3, log: 10 } } : {}),
      axes: [
        data.time === false ? { label: data.x_label || "" } : {},
        data.log ? { label: data.y || "", values: powerOfTen, size: 60 } : { label: data.y || "" },
      ],
    };
    new uPlot(options, [data.x].concat(data.series.map(function (s) { return s.values; })), holder);
  }

  document.querySelectorAll("script.time-series").forEach(draw);
})();
