// The dashboard's one chart helper (the monitoring report inlines it too): every script element of type
// application/json and class time-series becomes a uPlot chart in its parent element. Its JSON:
// {"x": [unix seconds], "y": "axis label", "log": true for a base-10 y axis (optional),
//  "series": [{"label": "…", "values": [numbers or null]}]};
// "time": false makes x plain numbers (ascending), labelled "x_label"; "bars": true draws bars from zero.
(function () {
  "use strict";
  var COLOURS = ["#0b2545", "#a00", "#0a6b0a", "#7a4b00", "#5a2d82"];

  function powerOfTen(u, values) {
    return values.map(function (v) { return v == null ? "" : v.toExponential(0); });
  }

  function scales(data) {
    if (data.bars) {  // whole-number categories: half a slot beside the first and last, bars from zero
      return {
        x: { time: false, range: function (u, min, max) { return [min - 0.5, max + 0.5]; } },
        y: { range: function (u, min, max) { return [0, max * 1.1 || 1]; } },
      };
    }
    return { x: { time: data.time !== false }, y: data.log ? { distr: 3, log: 10 } : {} };
  }

  function draw(script) {
    var data = JSON.parse(script.textContent);
    var holder = document.createElement("div");
    script.parentNode.appendChild(holder);
    var series = data.series.map(function (s, i) {
      var colour = COLOURS[i % COLOURS.length];
      var drawn = { label: s.label, stroke: colour, width: 2, points: { show: true, size: 5 } };  // a lone value too
      return data.bars ? Object.assign(drawn, { fill: colour, paths: uPlot.paths.bars({ size: [0.6, 80] }) }) : drawn;
    });
    var options = {
      width: Math.max(320, Math.min(script.parentNode.clientWidth || 800, 1100)),
      height: 260,
      series: [data.time === false ? { label: data.x_label || "x" } : {}].concat(series),
      scales: scales(data),
      axes: [
        data.time === false ? { label: data.x_label || "" } : {},
        data.log ? { label: data.y || "", values: powerOfTen, size: 60 } : { label: data.y || "" },
      ],
    };
    new uPlot(options, [data.x].concat(data.series.map(function (s) { return s.values; })), holder);
  }

  document.querySelectorAll("script.time-series").forEach(draw);
})();
