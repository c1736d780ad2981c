// The dashboard page: static HTML, one small vanilla script and a stylesheet, served from memory
// (no CDN, no external fonts: the collector's machine may have no network). The script renders
// device and publisher data with textContent only; nothing a device or publisher sends ever
// becomes markup.

/** The page; `token` (URL-safe, checked by the Dashboard) goes into the asset URLs so they pass the token check. */
export function indexHtml(token: string | undefined): string {
  const q = token === undefined ? '' : `?token=${encodeURIComponent(token)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iotupd fleet</title>
<link rel="stylesheet" href="/app.css${q}">
<script src="/app.js${q}" defer></script>
</head>
<body>
<header>
  <h1>iotupd fleet <span id="product"></span></h1>
  <span id="conn" class="conn">connecting</span>
</header>
<p id="summary" class="summary"></p>
<main>
<section id="versions-section">
  <h2>Versions <small>(trusted devices by installed version)</small></h2>
  <table id="versions"><thead><tr><th>version</th><th>devices</th></tr></thead><tbody></tbody></table>
</section>
<section id="rollout-section">
  <h2>Rollout <small>(per release, from the devices' reports and the publisher's word)</small></h2>
  <table id="rollout"><thead><tr><th>release</th><th>installed</th><th>downloading / installing</th><th>failed / rolled back</th><th>not yet</th><th>of them quiet</th><th>progress</th><th>publisher</th></tr></thead><tbody></tbody></table>
</section>
<section id="failed-section">
  <h2>Failed or rolled back <span class="count" id="failed-count"></span></h2>
  <table id="failed" class="devices"><thead><tr><th>device</th><th>state</th><th>version</th><th>pending</th><th>error</th><th>seen</th></tr></thead><tbody></tbody></table>
</section>
<section id="quiet-section">
  <h2>Not heard from (quiet) <span class="count" id="quiet-count"></span></h2>
  <table id="quiet" class="devices"><thead><tr><th>device</th><th>last state</th><th>version</th><th>pending</th><th>error</th><th>seen</th></tr></thead><tbody></tbody></table>
</section>
<section id="unknown-section">
  <h2>Unknown keys <small>(not enrolled: not trusted, not counted)</small> <span class="count" id="unknown-count"></span></h2>
  <table id="unknown" class="devices"><thead><tr><th>device</th><th>key id</th><th>state</th><th>version</th><th>from</th><th>seen</th></tr></thead><tbody></tbody></table>
</section>
<section id="devices-section">
  <h2>All trusted devices <span class="count" id="devices-count"></span></h2>
  <table id="devices" class="devices"><thead><tr><th>device</th><th>health</th><th>state</th><th>%</th><th>version</th><th>pending</th><th>error</th><th>seen</th></tr></thead><tbody></tbody></table>
</section>
<section id="history-section" hidden>
  <h2>History of <span id="history-device"></span></h2>
  <table id="history"><thead><tr><th>received</th><th>reason</th><th>state</th><th>%</th><th>version</th><th>sequence</th><th>pending</th><th>error</th><th>trusted</th></tr></thead><tbody></tbody></table>
</section>
<p id="drops" class="summary"></p>
</main>
</body>
</html>
`;
}

export const APP_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5em 2em; color: #1b1f24; background: #fafbfc; }
header { display: flex; align-items: baseline; gap: 1em; }
h1 { font-size: 1.4em; margin: 0.6em 0 0.2em; }
h2 { font-size: 1.1em; margin: 1.2em 0 0.3em; }
small, .count { color: #57606a; font-weight: normal; }
.summary { margin: 0.2em 0; }
.conn { padding: 0.1em 0.6em; border-radius: 1em; background: #ddd; font-size: 0.85em; }
.conn.live { background: #c6efce; }
.conn.down { background: #ffc7ce; }
table { border-collapse: collapse; min-width: 30em; background: #fff; }
th, td { text-align: left; padding: 0.2em 0.7em; border-bottom: 1px solid #e1e4e8; white-space: nowrap; }
td.error { white-space: normal; max-width: 36em; overflow-wrap: anywhere; color: #a40e26; }
th { font-weight: 600; color: #57606a; }
table.devices tbody tr { cursor: pointer; }
table.devices tbody tr:hover, tr.selected { background: #eef4ff; }
.health-failed { color: #a40e26; font-weight: 600; }
.health-quiet { color: #8a6100; font-weight: 600; }
.health-ok { color: #116329; }
.bar { display: flex; width: 16em; height: 0.9em; background: #eaeef2; }
.bar span { display: block; height: 100%; }
.bar .installed { background: #2da44e; }
.bar .progress { background: #54aeff; }
.bar .failed { background: #cf222e; }
.empty { color: #8c959f; font-style: italic; }
tr.release-paused { background: #fff8c5; }
tr.release-unknown { background: #f6f8fa; }
td.publisher { white-space: normal; min-width: 14em; max-width: 32em; overflow-wrap: anywhere; }
.publisher-paused { color: #8a6100; font-weight: 600; }
.publisher-serving { color: #116329; font-weight: 600; }
.publisher-unknown { color: #57606a; font-weight: 600; }
.demand { color: #57606a; font-size: 0.85em; }
.conflict { color: #a40e26; font-weight: 600; }
`;

// Plain ES2017 for any current browser; no template literals so it can live in this TS string.
export const APP_JS = String.raw`'use strict';
(function () {
  var token = new URLSearchParams(location.search).get('token');
  function withToken(path) {
    if (token === null) return path;
    return path + (path.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(token);
  }
  var last = null;
  var selected = null;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function ago(now, t) {
    var s = Math.max(0, Math.round((now - t) / 1000));
    return s < 120 ? s + 's ago' : s < 7200 ? Math.round(s / 60) + 'm ago' : Math.round(s / 3600) + 'h ago';
  }
  function pct(p) { return p === null || p === undefined ? '' : String(Math.round(p * 100)); }
  function fill(id, rows, emptyText, cols) {
    var tbody = document.querySelector('#' + id + ' tbody');
    var next = document.createDocumentFragment();
    if (rows.length === 0) {
      var tr = el('tr');
      var td = el('td', emptyText, 'empty');
      td.colSpan = cols;
      tr.appendChild(td);
      next.appendChild(tr);
    }
    rows.forEach(function (r) { next.appendChild(r); });
    tbody.replaceChildren(next);
  }
  function row(cells, device) {
    var tr = el('tr');
    cells.forEach(function (c) {
      if (c instanceof Node) { var td = el('td'); td.appendChild(c); tr.appendChild(td); }
      else if (c && typeof c === 'object' && c.node) { var tn = el('td', null, c.cls); tn.appendChild(c.node); tr.appendChild(tn); }
      else if (c && typeof c === 'object') tr.appendChild(el('td', c.text, c.cls));
      else tr.appendChild(el('td', c));
    });
    if (device) {
      tr.dataset.device = device;
      if (device === selected) tr.classList.add('selected');
      tr.addEventListener('click', function () { select(device); });
    }
    return tr;
  }
  function pending(d) { return d.pendingVersion === null ? '' : d.pendingVersion + ' (#' + d.pendingSequence + ')'; }
  function version(d) { return d.installedVersion + ' (#' + d.installedSequence + ')'; }
  function bar(r) {
    var b = el('div', null, 'bar');
    var n = Math.max(1, r.total);
    [['installed', r.installed], ['progress', r.inProgress], ['failed', r.failed]].forEach(function (p) {
      var s = el('span', null, p[0]);
      s.style.width = (100 * p[1] / n) + '%';
      b.appendChild(s);
    });
    b.title = r.installed + ' of ' + r.total + ' installed';
    return b;
  }
  function demandText(d) {
    return d.live + ' live: ' + d.needing + ' need it, ' + d.received + ' have it, ' + d.waiting + ' waiting, ' +
      d.outside + ' outside the rollout, ' + d.gaveUp + ' gave up';
  }
  // The publisher's word on a release: its state and reason (text only: the reason is the
  // publisher's), the device counts behind it on a second line.
  function publisher(r, now) {
    var box = el('div');
    var p = r.publisher;
    if (p === null) { box.appendChild(el('span', '', 'empty')); return box; }
    var head = el('div');
    head.appendChild(el('span', p.current, 'publisher-' + p.current));
    if (p.current === 'unknown') head.appendChild(el('span', ' (publisher quiet; last said ' + p.state + ', ' + ago(now, p.receivedAt) + ')'));
    if (p.reason) head.appendChild(el('span', ': ' + p.reason, 'reason'));
    box.appendChild(head);
    box.appendChild(el('div', demandText(p.demand), 'demand'));
    if (r.publisherManifests > 1) box.appendChild(el('div', r.publisherManifests + ' manifests under this sequence', 'conflict'));
    box.title = p.state + ' (signer ' + p.signerKeyId + ', manifest ' + p.manifestId.slice(0, 16) + ', heard ' + ago(now, p.receivedAt) + ')';
    return box;
  }

  function render(s) {
    last = s;
    var now = s.now;
    var sum = s.summary;
    document.getElementById('product').textContent = s.product;
    document.getElementById('summary').textContent =
      sum.trusted + ' trusted devices: ' + sum.health.ok + ' ok, ' + sum.health.failed + ' failed, ' +
      sum.health.quiet + ' quiet; ' + sum.unknown + ' unknown (not trusted). Quiet after ' + Math.round(sum.quietAfterMs / 1000) + ' s.';
    if (sum.releases.serving + sum.releases.paused + sum.releases.unknown > 0) {
      document.getElementById('summary').textContent += ' Publisher: ' + sum.releases.serving + ' serving, ' + sum.releases.paused + ' paused, ' +
        sum.releases.unknown + ' unknown (quiet).';
    }
    var drops = Object.keys(sum.drops).filter(function (k) { return sum.drops[k] > 0; }).map(function (k) { return k + ' ' + sum.drops[k]; });
    document.getElementById('drops').textContent = 'Dropped datagrams: ' + (drops.length ? drops.join(', ') : 'none');
    fill('versions', sum.versions.map(function (v) { return row([v.version, v.count]); }), 'no trusted devices', 2);
    fill('rollout', s.rollout.map(function (r) {
      var name = (r.version || '?') + ' (#' + r.sequence + ')';
      var tr = row([name, r.installed, r.inProgress, r.failed, r.notYet, r.quiet, bar(r), { node: publisher(r, now), cls: 'publisher' }]);
      tr.dataset.sequence = r.sequence;
      if (r.publisher !== null) tr.classList.add('release-' + r.publisher.current);
      return tr;
    }), 'no releases reported', 8);
    function more(n) { return n > 0 ? ' (' + n + ' more not shown)' : ''; }
    document.getElementById('failed-count').textContent = '(' + sum.health.failed + ')' + more(s.omitted.failed);
    document.getElementById('quiet-count').textContent = '(' + sum.health.quiet + ')' + more(s.omitted.quiet);
    document.getElementById('unknown-count').textContent = '(' + sum.unknown + ')' + more(s.omitted.unknown);
    document.getElementById('devices-count').textContent = '(' + sum.trusted + ')' + more(s.omitted.devices);
    fill('failed', s.failed.map(function (d) {
      return row([d.deviceId, { text: d.state, cls: 'health-failed' }, version(d), pending(d), { text: d.lastError || '', cls: 'error' }, ago(now, d.lastSeen)], d.deviceId);
    }), 'none', 6);
    fill('quiet', s.quiet.map(function (d) {
      return row([d.deviceId, { text: d.state, cls: 'health-quiet' }, version(d), pending(d), { text: d.lastError || '', cls: 'error' }, ago(now, d.lastSeen)], d.deviceId);
    }), 'none', 6);
    fill('unknown', s.unknown.map(function (d) {
      return row([d.deviceId, d.keyId, d.state, version(d), d.from || '', ago(now, d.lastSeen)], d.deviceId);
    }), 'none', 6);
    fill('devices', s.devices.map(function (d) {
      return row([d.deviceId, { text: d.health, cls: 'health-' + d.health }, d.state, pct(d.progress), version(d), pending(d), { text: d.lastError || '', cls: 'error' }, ago(now, d.lastSeen)], d.deviceId);
    }), 'no trusted devices', 8);
    if (selected !== null) loadHistory(selected);
  }

  function select(device) {
    selected = device;
    document.querySelectorAll('tr.selected').forEach(function (t) { t.classList.remove('selected'); });
    document.querySelectorAll('tr[data-device]').forEach(function (t) { if (t.dataset.device === device) t.classList.add('selected'); });
    loadHistory(device);
  }

  var loading = null;
  function loadHistory(device) {
    if (loading === device) return;
    loading = device;
    fetch(withToken('/api/history?device=' + encodeURIComponent(device)), { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : r.text().then(function (t) { throw new Error(t); }); })
      .then(function (h) {
        if (selected !== device) return;
        var section = document.getElementById('history-section');
        section.hidden = false;
        document.getElementById('history-device').textContent = h.deviceId;
        fill('history', h.history.map(function (e) {
          return row([new Date(e.receivedAt).toISOString().replace('T', ' ').slice(0, 19), e.reason, e.state, pct(e.progress),
            e.installedVersion, e.installedSequence, e.pendingVersion || '', { text: e.lastError || '', cls: 'error' }, e.trusted ? 'yes' : 'no']);
        }), 'no history', 9);
      })
      .catch(function (err) { document.getElementById('history-device').textContent = device + ': ' + err.message; })
      .then(function () { if (loading === device) loading = null; });
  }

  var conn = document.getElementById('conn');
  var es = new EventSource(withToken('/api/events'));
  es.addEventListener('snapshot', function (e) { render(JSON.parse(e.data)); });
  es.onopen = function () { conn.textContent = 'live'; conn.className = 'conn live'; };
  es.onerror = function () { conn.textContent = 'reconnecting'; conn.className = 'conn down'; };
  window.iotupdDashboard = { last: function () { return last; } };
})();
`;
