// The dashboard: reads GET /metrics every two seconds (the queues' counts
// and totals; rates are the totals' change between two reads), GET /health,
// and for the queue chosen its attributes (GetQueueAttributes, the Query
// protocol over GET) and a look at its messages (GET /_aws/sqs/messages).
// It keeps the chart's history itself, from when the page was opened.
'use strict';

const REFRESH_MS = 2000;
const WINDOW_MS = 10 * 60 * 1000;
const COLOURS = ['#2f6fdf', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285', '#e67700', '#495057'];

const history = new Map(); // queue -> [{t, messages}]
let previous = null; // the last read: {t, queues}
let chosen = null; // the queue whose detail is shown

// ---- the Prometheus text format, as /metrics writes it ----

function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function queuesOf(samples) {
  const queues = new Map();
  const q = (name) => {
    if (!queues.has(name)) queues.set(name, { name, visible: 0, in_flight: 0, delayed: 0 });
    return queues.get(name);
  };
  for (const s of samples) {
    if (s.labels.queue === undefined) continue;
    const name = s.name.replace(/^shmq_queue_/, '');
    if (name === 'messages') q(s.labels.queue)[s.labels.state] = s.value;
    else q(s.labels.queue)[name] = s.value;
  }
  return queues;
}

// ---- formatting ----

function text(tag, content, className) {
  const e = document.createElement(tag);
  e.textContent = content;
  if (className) e.className = className;
  return e;
}

// A row of one cell across the table: a note in place of its rows.
function row1(note) {
  const row = document.createElement('tr');
  const cell = text('td', note, 'note');
  cell.colSpan = 5;
  row.append(cell);
  return row;
}

function age(seconds) {
  if (!seconds) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function bytes(n) {
  if (n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function rate(now, before, key, seconds) {
  if (!before || seconds <= 0 || before[key] === undefined) return '–';
  return Math.max(0, (now[key] - before[key]) / seconds).toFixed(1);
}

// ---- the queue table and the chart ----

function renderTable(queues, seconds) {
  const body = document.querySelector('#queues tbody');
  body.replaceChildren();
  for (const q of [...queues.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const before = previous && previous.queues.get(q.name);
    const row = document.createElement('tr');
    row.dataset.queue = q.name;
    if (q.name === chosen) row.className = 'chosen';
    const name = text('td');
    const link = text('a', q.name);
    link.href = `#${encodeURIComponent(q.name)}`;
    name.append(link);
    row.append(name,
      text('td', String(q.visible), 'visible'),
      text('td', String(q.in_flight), 'in-flight'),
      text('td', String(q.delayed), 'delayed'),
      text('td', age(q.oldest_message_age_seconds), 'oldest'),
      text('td', rate(q, before, 'messages_sent_total', seconds), 'sent-rate'),
      text('td', rate(q, before, 'messages_received_total', seconds), 'received-rate'),
      text('td', rate(q, before, 'messages_deleted_total', seconds), 'deleted-rate'),
      text('td', bytes(q.memory_bytes), 'memory'));
    body.append(row);
  }
  document.getElementById('no-queues').hidden = queues.size > 0;
}

function record(queues, t) {
  for (const q of queues.values()) {
    if (!history.has(q.name)) history.set(q.name, []);
    history.get(q.name).push({ t, messages: q.visible + q.in_flight + q.delayed });
  }
  for (const [name, points] of history) {
    while (points.length > 0 && points[0].t < t - WINDOW_MS) points.shift();
    if (!queues.has(name) || points.length === 0) history.delete(name);
  }
}

function renderChart(t) {
  const canvas = document.getElementById('chart');
  const ctx = canvas.getContext('2d');
  const w = canvas.width;
  const h = canvas.height;
  const left = 56;
  const bottom = h - 20;
  ctx.clearRect(0, 0, w, h);
  // The busiest queues get a line each.
  const lines = [...history.entries()]
    .map(([name, points]) => ({ name, points, peak: Math.max(...points.map((p) => p.messages)) }))
    .sort((a, b) => b.peak - a.peak || a.name.localeCompare(b.name))
    .slice(0, COLOURS.length);
  const top = Math.max(1, ...lines.map((l) => l.peak));
  ctx.strokeStyle = '#ced4da';
  ctx.fillStyle = '#495057';
  ctx.font = '12px sans-serif';
  ctx.lineWidth = 1;
  for (const fraction of [0, 0.5, 1]) {
    const y = bottom - fraction * (bottom - 10);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(w, y);
    ctx.stroke();
    ctx.fillText(String(Math.round(top * fraction)), 4, y + 4);
  }
  // From when the page began to record (at least a minute), up to the window.
  const first = Math.min(t, ...lines.map((l) => l.points[0].t));
  const span = Math.min(WINDOW_MS, Math.max(60000, t - first));
  ctx.fillText(span >= 120000 ? `-${Math.round(span / 60000)} min` : `-${Math.round(span / 1000)} s`, left, h - 4);
  ctx.fillText('now', w - 28, h - 4);
  const x = (when) => left + ((when - (t - span)) / span) * (w - left);
  const legend = document.getElementById('legend');
  legend.replaceChildren();
  lines.forEach((line, i) => {
    ctx.strokeStyle = COLOURS[i];
    ctx.lineWidth = 2;
    ctx.beginPath();
    line.points.forEach((p, j) => {
      const y = bottom - (p.messages / top) * (bottom - 10);
      if (j === 0) ctx.moveTo(x(p.t), y);
      else ctx.lineTo(x(p.t), y);
    });
    ctx.stroke();
    const item = text('li', line.name);
    item.style.setProperty('--colour', COLOURS[i]);
    legend.append(item);
  });
}

function showError(message) {
  const e = document.getElementById('error');
  e.hidden = !message;
  e.textContent = message || '';
}

async function refresh() {
  try {
    const [metrics, health] = await Promise.all([fetch('/metrics'), fetch('/health')]);
    if (!metrics.ok) throw new Error(`/metrics answered ${metrics.status}`);
    const t = Date.now();
    const queues = queuesOf(parseMetrics(await metrics.text()));
    const seconds = previous ? (t - previous.t) / 1000 : 0;
    renderTable(queues, seconds);
    record(queues, t);
    renderChart(t);
    previous = { t, queues };
    const h = await health.json();
    document.getElementById('daemon').textContent = health.ok
      ? `shmqd ${h.version}, up ${age(h.uptime_seconds)}, ${h.queues} queues`
      : `shmqd ${h.status}`;
    showError('');
  } catch (e) {
    showError(`cannot read the daemon's figures: ${e.message}`);
  }
}

// ---- one queue: attributes and a look at its messages ----

async function query(path, params) {
  const answer = await fetch(`${path}?${new URLSearchParams(params)}`);
  const xml = new DOMParser().parseFromString(await answer.text(), 'application/xml');
  if (!answer.ok) {
    const message = xml.querySelector('Message');
    throw new Error(message ? message.textContent : `${answer.status}`);
  }
  return xml;
}

async function showQueue(name) {
  chosen = name;
  document.getElementById('detail').hidden = false;
  document.getElementById('detail-name').textContent = name;
  for (const row of document.querySelectorAll('#queues tbody tr')) {
    row.className = row.dataset.queue === name ? 'chosen' : '';
  }
  const attributes = document.querySelector('#attributes tbody');
  try {
    const url = (await query('/', { Action: 'GetQueueUrl', QueueName: name })).querySelector('QueueUrl').textContent;
    const xml = await query(new URL(url).pathname, { Action: 'GetQueueAttributes', 'AttributeName.1': 'All' });
    attributes.replaceChildren();
    for (const a of xml.querySelectorAll('Attribute')) {
      const row = document.createElement('tr');
      row.append(text('th', a.querySelector('Name').textContent), text('td', a.querySelector('Value').textContent));
      attributes.append(row);
    }
    await showMessages(url);
  } catch (e) {
    attributes.replaceChildren(row1(`cannot read the queue: ${e.message}`));
  }
}

async function showMessages(url) {
  const body = document.querySelector('#messages tbody');
  const answer = await fetch(`/_aws/sqs/messages?${new URLSearchParams({
    QueueUrl: url, ShowInvisible: 'true', ShowDelayed: 'true', MaxNumberOfMessages: '10',
  })}`, { headers: { Accept: 'application/json' } });
  const json = await answer.json();
  body.replaceChildren();
  if (!answer.ok) {
    body.append(row1(json.message || json.Message || `${answer.status}`));
    return;
  }
  for (const m of json.Messages || []) {
    const a = m.Attributes || {};
    const row = document.createElement('tr');
    const preview = m.Body.length > 120 ? `${m.Body.slice(0, 120)}…` : m.Body;
    row.append(
      text('td', m.MessageId, 'id'),
      text('td', new Date(Number(a.SentTimestamp)).toLocaleTimeString()),
      text('td', a.ApproximateReceiveCount || '0'),
      text('td', a.MessageGroupId || '–'),
      text('td', preview, 'body'));
    body.append(row);
  }
  if (body.children.length === 0) body.append(row1('no messages'));
}

function fromHash() {
  const name = decodeURIComponent(location.hash.slice(1));
  if (name) showQueue(name);
}

window.addEventListener('hashchange', fromHash);
document.getElementById('refresh-messages').addEventListener('click', () => chosen && showQueue(chosen));
refresh();
setInterval(refresh, REFRESH_MS);
fromHash();
