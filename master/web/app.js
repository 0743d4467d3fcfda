// The prs dashboard: reads the master's /api (master/web.h) every second and draws the jobs, the
// nodes and one job in detail. Plain JavaScript, no framework, no build step. Every value from
// the master is put in the page as text (textContent), never as HTML.
'use strict';

const REFRESH_MS = 1000;
const TAIL_BYTES = 128 * 1024; // of a CSV that grows: its header and its last rows
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const ATTEMPT_COLUMNS = ['Mini-batch Id', 'Try', 'Node', 'Process', 'Start Time', 'Items Total',
  'Items Failed', 'Elapsed Seconds', 'Status', 'Error'];
const COLUMN_CLASS = { 'Mini-batch Id': 'num', 'Try': 'num', 'Items Total': 'num',
  'Items Failed': 'num', 'Elapsed Seconds': 'num' };

const $ = (id) => document.getElementById(id);
const num = (v) => Number(v || 0); // int64 fields arrive as strings

// --- The token ------------------------------------------------------------------------------

// "#token=..." in the address (e.g. from a script) is taken once, then removed from it.
(function takeTokenFromAddress() {
  const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (m) {
    sessionStorage.setItem('prs-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + '#/');
  }
})();

class NeedToken extends Error {}

async function api(path, asText) {
  const headers = {};
  const token = sessionStorage.getItem('prs-token');
  if (token) headers.Authorization = 'Bearer ' + token;
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (response.status === 401) throw new NeedToken(await response.text());
  if (!response.ok) {
    const error = new Error((await response.text()).trim() || response.statusText);
    error.status = response.status;
    throw error;
  }
  if (!asText) return response.json();
  return { text: await response.text(), size: num(response.headers.get('X-Prs-File-Size')) };
}

function logUrl(jobId, path, offset, maxBytes) {
  let url = '/api/jobs/' + encodeURIComponent(jobId) + '/log?path=' + encodeURIComponent(path);
  if (offset) url += '&offset=' + offset;
  if (maxBytes) url += '&max_bytes=' + maxBytes;
  return url;
}

// --- Small helpers ----------------------------------------------------------------------------

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    if (c instanceof Node) {
      const td = document.createElement('td');
      td.appendChild(c);
      tr.appendChild(td);
    } else {
      tr.appendChild(el('td', c.text, c.className));
    }
  }
  return tr;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function duration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return '-';
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + ' s';
  if (seconds < 3600) return Math.floor(seconds / 60) + ' min ' + Math.round(seconds % 60) + ' s';
  return Math.floor(seconds / 3600) + ' h ' + Math.round((seconds % 3600) / 60) + ' min';
}

function progress(job) {
  const c = job.counts;
  const done = num(c.items_succeeded) + num(c.items_failed);
  const total = num(c.items_total);
  if (job.state === 'SUCCEEDED') return 1;
  return total > 0 ? Math.min(1, done / total) : 0;
}

function eta(job) {
  const c = job.counts;
  const left = num(c.items_total) - num(c.items_succeeded) - num(c.items_failed);
  if (TERMINAL.has(job.state) || !c.listing_done || job.items_per_second <= 0) return '-';
  return duration(left / job.items_per_second);
}

function bar(job) {
  const outer = el('div', null, 'progress');
  const inner = el('div', null, job.state);
  inner.style.width = (100 * progress(job)).toFixed(1) + '%';
  outer.appendChild(inner);
  return outer;
}

function stateBadge(state) {
  return el('span', state, 'state ' + state);
}

// CSV text (RFC 4180: a field may be quoted, with "" for a quote, and hold commas and line
// breaks; prs quotes the Error column so) into rows of fields.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') {
        field += c;
      } else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else {
        quoted = false;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') {
      field += c;
    }
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

// A CSV log file: its header and its last rows (TAIL_BYTES at most).
async function readCsv(jobId, file) {
  const head = await api(logUrl(jobId, file.path, 0, 4096), true);
  const header = parseCsv(head.text.split('\n')[0])[0] || [];
  let rows;
  if (num(file.size) <= TAIL_BYTES) {
    rows = parseCsv((await api(logUrl(jobId, file.path), true)).text).slice(1);
  } else {
    // From the first whole line of the tail; a row cut in two has the wrong width.
    const tail = (await api(logUrl(jobId, file.path, num(file.size) - TAIL_BYTES), true)).text;
    rows = parseCsv(tail.slice(tail.indexOf('\n') + 1));
  }
  return { header, rows: rows.filter((r) => r.length === header.length) };
}

// --- The overview -----------------------------------------------------------------------------

async function showOverview() {
  const jobs = (await api('/api/jobs')).jobs;
  fill($('jobs').tBodies[0], jobs.map((j) => {
    const c = j.counts;
    const link = el('a', j.job_id);
    link.href = '#/job/' + encodeURIComponent(j.job_id);
    const tr = row([link, { text: j.owner }, stateBadge(j.state), bar(j),
      { text: (num(c.items_succeeded) + num(c.items_failed)) + ' / ' + num(c.items_total),
        className: 'num items' },
      { text: num(c.items_failed), className: 'num' },
      { text: j.items_per_second.toFixed(1), className: 'num' },
      { text: eta(j), className: 'num' }, { text: j.active_agents, className: 'num' }]);
    tr.dataset.job = j.job_id;
    tr.dataset.state = j.state;
    tr.className = 'clickable';
    tr.addEventListener('click', (e) => {
      if (e.target.tagName !== 'A') location.hash = '#/job/' + encodeURIComponent(j.job_id);
    });
    return tr;
  }));
  $('no-jobs').hidden = jobs.length > 0;
  await showNodes();
}

async function nodesOrNull() {
  try {
    return (await api('/api/nodes')).agents;
  } catch (e) {
    if (e.status === 403) return null; // ListAgents needs read or admin: not for submitters
    throw e;
  }
}

async function showNodes() {
  const agents = await nodesOrNull();
  $('nodes-section').hidden = agents === null;
  if (agents === null) return;
  fill($('nodes').tBodies[0], agents.map((a) => {
    const running = (a.running || []).map((r) =>
      r.job_id + ' #' + r.task_id + ' on ' + (r.process_name || 'a starting worker') +
      ' (' + duration(num(r.running_ms) / 1000) + ')').join('\n');
    const tr = row([{ text: a.node_id }, { text: a.hostname + ' ' + a.ip },
      { text: (a.gpus || []).join(',') || '-' }, { text: a.job_id || '-' },
      { text: a.busy_workers, className: 'num' }, { text: running || '-', className: 'running' },
      { text: duration(num(a.last_seen_ms_ago) / 1000) + ' ago', className: 'num' }]);
    tr.dataset.node = a.node_id;
    return tr;
  }));
}

// --- One job ----------------------------------------------------------------------------------

let lastJob = null; // {id, attemptsSize, chartsAt, traceFor}

async function showJob(jobId, logPath) {
  const job = await api('/api/jobs/' + encodeURIComponent(jobId));
  if (!lastJob || lastJob.id !== jobId) lastJob = { id: jobId };
  $('job-id').textContent = job.job_id + (job.name ? ' (' + job.name + ')' : '');
  $('job-state').replaceWith(Object.assign(stateBadge(job.state), { id: 'job-state' }));
  $('job-bar').className = job.state;
  $('job-bar').style.width = (100 * progress(job)).toFixed(1) + '%';
  summary(job);
  miniBatches(job);
  // The tree only grows: listed again every 5 s (each second while it is small).
  if (!lastJob.files || Date.now() - lastJob.filesAt > (lastJob.files.length > 500 ? 5000 : 0)) {
    lastJob.files = (await api('/api/jobs/' + encodeURIComponent(jobId) + '/logs')).files;
    lastJob.filesAt = Date.now();
  }
  const files = lastJob.files;
  await firstError(job, files);
  await workers(job);
  await attempts(job, files);
  await charts(job, files);
  logList(job, files);
  await viewer(job, files, logPath);
}

function summary(job) {
  const c = job.counts;
  const items = [
    ['Owner', job.owner], ['State', job.state + (job.reason ? ': ' + job.reason : '')],
    ['Items', (num(c.items_succeeded) + num(c.items_failed)) + ' of ' + num(c.items_total) +
      (c.listing_done ? '' : ' (still listing)') + ', ' + num(c.items_failed) + ' failed'],
    ['Rate', job.items_per_second.toFixed(1) + ' items/s'], ['ETA', eta(job)],
    ['Agents', job.active_agents], ['Rows written', num(c.rows_written)],
    ['Output', job.output_file || job.output_dir || '-'], ['Logs', job.log_dir],
    ['Submitted', num(job.submit_time_ms) ? new Date(num(job.submit_time_ms)).toISOString() : '-'],
    ['Run time', num(job.start_time_ms) ? duration(((num(job.end_time_ms) || Date.now()) -
      num(job.start_time_ms)) / 1000) : '-'],
  ];
  for (const note of job.notes || []) items.push(['Note', note]);
  const dl = $('job-summary');
  dl.replaceChildren();
  for (const [k, v] of items) {
    dl.appendChild(el('dt', k));
    dl.appendChild(el('dd', v));
  }
}

function miniBatches(job) {
  const c = job.counts;
  const q = job.queue || { pending: 0, running: 0 };
  const failed = num(c.mini_batches_failed);
  const parts = { pending: num(q.pending), running: num(q.running),
    succeeded: num(c.mini_batches_processed) - failed, failed };
  const total = Math.max(1, parts.pending + parts.running + parts.succeeded + parts.failed);
  const stack = $('mb-states');
  stack.replaceChildren(...Object.entries(parts).map(([k, v]) => {
    const d = el('div', null, k);
    d.style.width = (100 * v / total) + '%';
    d.title = k + ': ' + v;
    return d;
  }));
  fill($('mb-table').tBodies[0], [row([{ text: parts.pending }, { text: parts.running },
    { text: parts.succeeded }, { text: parts.failed }, { text: num(c.mini_batches_created) },
    { text: num(c.retries) }])]);
}

async function firstError(job, files) {
  $('failure').hidden = !job.first_error;
  if (!job.first_error) return;
  $('first-error').textContent = job.first_error;
  const link = $('first-error-link');
  link.textContent = job.first_error_log || '-';
  link.href = logHref(job.job_id, job.first_error_log);
  // The file comes with the agent's next shipment of logs: read once it is there.
  const shipped = files.some((f) => f.path === job.first_error_log);
  if (!shipped) $('traceback').textContent = '(the traceback is on its way from the node)';
  if (shipped && lastJob.traceFor !== job.first_error_log) {
    // The file has every failure of that worker: the first record, to its blank line.
    const text = (await api(logUrl(job.job_id, job.first_error_log, 0, 65536), true)).text;
    const end = text.indexOf('\n\n');
    $('traceback').textContent = end >= 0 ? text.slice(0, end + 1) : text;
    lastJob.traceFor = job.first_error_log;
  }
}

async function workers(job) {
  // An ended job runs nothing, whatever a heartbeat of a moment ago said.
  const agents = TERMINAL.has(job.state) ? [] : (await nodesOrNull()) || [];
  const rows = [];
  for (const a of agents) {
    for (const r of a.running || []) {
      if (r.job_id !== job.job_id) continue;
      rows.push(row([{ text: a.node_id }, { text: r.process_name || '(starting)' },
        { text: '#' + r.task_id },
        { text: duration(num(r.running_ms) / 1000), className: 'num' }]));
    }
  }
  fill($('workers').tBodies[0], rows);
  $('no-workers').hidden = rows.length > 0;
}

async function attempts(job, files) {
  const file = files.find((f) => f.path === 'sys/job_report/processed_mini-batches.csv');
  if (!file || lastJob.attemptsSize === file.size) return;
  lastJob.attemptsSize = file.size;
  const csv = await readCsv(job.job_id, file);
  const shown = csv.rows.slice(-200).reverse(); // the newest first
  $('attempts-count').textContent = '(newest ' + shown.length + ')';
  // The columns that tell what happened; the file has them all (pid, agent session, ...).
  const columns = ATTEMPT_COLUMNS.map((name) => csv.header.indexOf(name)).filter((i) => i >= 0);
  const status = csv.header.indexOf('Status');
  $('attempts').tHead.replaceChildren(row([]));
  const head = $('attempts').tHead.rows[0];
  for (const i of columns) head.appendChild(el('th', csv.header[i]));
  fill($('attempts').tBodies[0], shown.map((r) => {
    const tr = row(columns.map((i) => ({ text: r[i], className: COLUMN_CLASS[csv.header[i]] })));
    tr.dataset.status = r[status];
    if (r[status] && r[status] !== 'RUN_DONE') tr.className = 'error';
    return tr;
  }));
}

// One small SVG line chart of `values` (0..max) over `times`.
function chart(title, values, max) {
  const w = 260, h = 70;
  const box = el('div', null, 'chart');
  const last = values.length ? values[values.length - 1] : 0;
  box.appendChild(el('div', title + ': ' + last.toFixed(1), 'title'));
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', w);
  svg.setAttribute('height', h);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  const n = Math.max(1, values.length - 1);
  const y = (v) => (h - 2 - (h - 4) * Math.min(1, v / max)).toFixed(1);
  line.setAttribute('points', values.map((v, i) => (i * w / n).toFixed(1) + ',' + y(v)).join(' '));
  svg.appendChild(line);
  if (values.length === 1) { // one sample so far: a dot, and when the next comes
    const dot = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    dot.setAttribute('cx', 4);
    dot.setAttribute('cy', y(values[0]));
    dot.setAttribute('r', 3);
    svg.appendChild(dot);
  }
  box.appendChild(svg);
  if (values.length === 1) {
    box.appendChild(el('div', '1 sample; one every resource_monitor_interval seconds', 'muted'));
  }
  return box;
}

async function charts(job, files) {
  // The perf files grow every resource_monitor_interval: redrawn every 5 s at most.
  if (lastJob.chartsAt && Date.now() - lastJob.chartsAt < 5000 && !TERMINAL.has(job.state)) return;
  lastJob.chartsAt = Date.now();
  const boxes = [];
  for (const f of files) {
    const m = f.path.match(/^perf\/([^/]+)\/(node_resource_usage|gpu_usage)\.csv$/);
    if (!m) continue;
    const csv = await readCsv(job.job_id, f);
    const col = (name) => csv.header.indexOf(name);
    if (m[2] === 'node_resource_usage') {
      boxes.push(chart(m[1] + ' CPU %', csv.rows.map((r) => Number(r[col('Cpu Percent')])), 100));
      boxes.push(chart(m[1] + ' memory %',
        csv.rows.map((r) => Number(r[col('Memory Used Percent')])), 100));
    } else {
      const gpus = [...new Set(csv.rows.map((r) => r[col('GPU')]))];
      for (const g of gpus) {
        const mine = csv.rows.filter((r) => r[col('GPU')] === g);
        boxes.push(chart(m[1] + ' GPU ' + g + ' %',
          mine.map((r) => Number(r[col('Utilization Percent')])), 100));
      }
    }
  }
  $('charts').replaceChildren(...boxes);
  $('no-charts').hidden = boxes.length > 0;
}

function logList(job, files) {
  if (lastJob.listed === files) return; // unchanged since drawn
  lastJob.listed = files;
  const MAX_SHOWN = 2000; // perf/<node>/os/ adds files every hour on every node
  const shown = files.length > MAX_SHOWN ? files.filter((f) => !f.path.startsWith('perf/'))
    .slice(0, MAX_SHOWN) : files;
  const hidden = files.length - shown.length;
  $('logs-more').textContent =
    hidden > 0 ? hidden + ' more files (prs logs ' + job.job_id + ' lists them all)' : '';
  $('logs').replaceChildren(...shown.map((f) => {
    const li = el('li');
    const a = el('a', f.path);
    a.href = logHref(job.job_id, f.path);
    li.appendChild(a);
    li.appendChild(el('span', ' ' + num(f.size) + ' B', 'muted'));
    return li;
  }));
}

async function viewer(job, files, path) {
  $('viewer').hidden = !path;
  if (!path) return;
  const file = files.find((f) => f.path === path);
  $('viewer-path').textContent = path;
  if (!file) {
    $('viewer-text').textContent = '(not written yet)';
    return;
  }
  // The last MiB of a large file.
  const offset = Math.max(0, num(file.size) - 1024 * 1024);
  const text = (await api(logUrl(job.job_id, path, offset), true)).text;
  $('viewer-text').textContent = (offset ? '... (the last MiB)\n' : '') + text;
  if (lastJob.shown !== path) { // a link was followed: show the file, below the tables
    lastJob.shown = path;
    $('viewer').scrollIntoView();
  }
}

// --- Routing and the refresh loop -------------------------------------------------------------

// "#/job/JOB/log/user/stdout/n1/a%25b.txt": each part of the path encoded on its own, so any
// file name (a '%', a '#', a space) comes back as it was.
function logHref(jobId, path) {
  return '#/job/' + encodeURIComponent(jobId) + '/log/' +
    path.split('/').map(encodeURIComponent).join('/');
}

function route(hash = location.hash) {
  const m = hash.match(/^#\/job\/([^/]+)(?:\/log\/(.+))?$/);
  if (!m) return {};
  const decode = (part) => {
    try {
      return decodeURIComponent(part);
    } catch (e) {
      return part; // typed by hand, not a link of this page
    }
  };
  return { job: decode(m[1]), log: m[2] ? m[2].split('/').map(decode).join('/') : null };
}

let timer = null;
let pointerDown = false;

// Redrawing replaces the tables' rows: not while the user clicks or selects text in them.
function userBusy() {
  return pointerDown || String(window.getSelection() || '').length > 0;
}

async function refresh(fromTimer) {
  clearTimeout(timer);
  if (fromTimer === true && userBusy()) {
    timer = setTimeout(() => refresh(true), REFRESH_MS);
    return;
  }
  let r = {};
  try {
    r = route();
    if (r.job) {
      await showJob(r.job, r.log);
    } else {
      await showOverview();
    }
    $('overview').hidden = !!r.job;
    $('job').hidden = !r.job;
    $('login').hidden = true;
    $('error').hidden = true;
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof NeedToken) {
      $('login').hidden = false;
      $('overview').hidden = $('job').hidden = true;
      if (sessionStorage.getItem('prs-token')) {
        $('login-reason').textContent = 'The master refused this token: ' + e.message;
      }
      return; // until a token is given
    }
    $('error').replaceChildren(el('span', e.message + ' '));
    if (r.job) {
      const back = el('a', 'all jobs');
      back.href = '#/';
      $('error').appendChild(back);
    }
    $('error').hidden = false;
  }
  timer = setTimeout(() => refresh(true), REFRESH_MS);
}

document.addEventListener('DOMContentLoaded', () => {
  $('where').textContent = location.host;
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('prs-token', $('token').value.trim());
    $('token').value = '';
    refresh();
  });
  window.addEventListener('hashchange', () => refresh());
  document.addEventListener('mousedown', () => { pointerDown = true; });
  document.addEventListener('mouseup', () => { pointerDown = false; });
  refresh();
});
