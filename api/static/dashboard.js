// Kestrel dashboard: log in with an API key, then everything live over /ws.
// Plain script, no build step. Money values arrive as strings and are only displayed,
// except for drawing, where a float is good enough.
"use strict";

const state = {
  access: null, refresh: null, tiers: [], mode: null, ws: null,
  seq: {}, positions: [], orders: [], decisions: [], equity: [], prices: {},
  candles: [], fills: [], symbol: null, pending: null, callId: 0, calls: {},
};
const $ = (id) => document.getElementById(id);
const fmt = (v) => (v === null || v === undefined ? "-" : String(v));

async function api(path, options = {}) {
  const headers = { "content-type": "application/json" };
  if (state.access) headers.authorization = "Bearer " + state.access;
  const answer = await fetch(path, { ...options, headers });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.detail || body.error || answer.status);
  return body;
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const pair = await api("/api/auth/token", {
      method: "POST", body: JSON.stringify({ api_key: $("api-key").value }),
    });
    $("api-key").value = "";  // the key is not kept anywhere by the page
    useTokens(pair);
    await start();
  } catch (err) {
    $("login-error").textContent = "login failed: " + err.message;
  }
}

function useTokens(pair) {
  state.access = pair.access_token;
  state.refresh = pair.refresh_token;
  state.tiers = pair.tiers;
  state.mode = pair.mode;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, Math.max(5, pair.expires_in - 30) * 1000);
}

async function refresh() {
  try {
    useTokens(await api("/api/auth/refresh", {
      method: "POST", body: JSON.stringify({ refresh_token: state.refresh }),
    }));
    send({ type: "auth", token: state.access });
  } catch (err) {
    say("session ended: " + err.message + " (log in again)");
  }
}

function canControl() {
  const trade = state.mode === "REAL" ? "REAL_TRADE" : "DEMO_TRADE";
  return state.tiers.includes(trade) || state.tiers.includes("ADMIN");
}
function canTrade() {
  return state.tiers.includes(state.mode === "REAL" ? "REAL_TRADE" : "DEMO_TRADE");
}

async function start() {
  const status = await api("/api/status");
  $("login").hidden = true;
  $("board").hidden = false;
  $("mode").textContent = status.mode;
  $("mode").className = "badge " + (status.mode === "REAL" ? "alert" : "on");
  $("who").textContent = status.key.name + " (" + status.key.tiers.join(", ") + ")";
  for (const button of document.querySelectorAll("[data-needs=control]")) {
    button.disabled = !canControl();
  }
  const select = $("symbol");
  select.innerHTML = "";
  for (const symbol of status.watchlist) select.add(new Option(symbol, symbol));
  state.symbol = status.watchlist[0] || null;
  showStop(status.emergency_stop);
  await loadChart();
  connect();
}

function connect() {
  const url = location.origin.replace(/^http/, "ws") + "/ws";
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => send({ type: "auth", token: state.access });
  ws.onmessage = (frame) => receive(JSON.parse(frame.data));
  ws.onclose = (closed) => {
    $("conn").textContent = "disconnected" + (closed.reason ? ": " + closed.reason : "");
    $("conn").className = "badge off";
    if (state.access) setTimeout(connect, 2000);
  };
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function subscribe(channels) {
  for (const channel of channels) delete state.seq[channel];
  send({ type: "subscribe", channels });
}

function channels() {
  const list = ["orders", "positions", "decisions", "account"];
  if (state.symbol) list.push("prices:" + state.symbol);
  return list;
}

function receive(message) {
  switch (message.type) {
    case "authed":
      $("conn").textContent = "live";
      $("conn").className = "badge on";
      if (!Object.keys(state.seq).length) subscribe(channels());
      return;
    case "snapshot":
      state.seq[message.channel] = message.seq;
      return apply(message.channel, message.data, true);
    case "update": {
      const last = state.seq[message.channel];
      if (last !== undefined && message.seq !== last + 1) {
        return subscribe([message.channel]);  // a gap: resync this channel
      }
      state.seq[message.channel] = message.seq;
      return apply(message.channel, message.data, false);
    }
    case "result": case "error": {
      const done = state.calls[message.id];
      delete state.calls[message.id];
      if (done) return done(message);
      if (message.type === "error") say(message.code + ": " + message.detail);
      return;
    }
    case "pong": return;
  }
}

function apply(channel, data, snapshot) {
  if (channel === "positions") {
    state.positions = snapshot ? data : (data.positions || state.positions);
    renderPositions();
    drawPrice();
  } else if (channel === "orders") {
    if (snapshot) state.orders = data;
    else if (data.order) {
      const rest = state.orders.filter((o) => o.client_order_id !== data.order.client_order_id);
      const live = ["NEW", "UNKNOWN", "OPEN", "PARTIALLY_FILLED"].includes(data.order.status);
      state.orders = live ? [...rest, data.order] : rest;
      if (["FILLED", "PARTIALLY_FILLED"].includes(data.order.status)) addFill(data.order);
    }
    renderOrders();
  } else if (channel === "decisions") {
    state.decisions = snapshot ? data : [...state.decisions, data].slice(-50);
    renderDecisions();
  } else if (channel === "account") {
    if (data.status) showStop(data.status.emergency_stop);
    if (data.balances) addEquity(data.balances);
  } else if (channel.startsWith("prices:")) {
    if (data.last !== null) {
      state.prices[data.symbol] = Number(data.last);
      $("last-price").textContent = data.last;
      if (state.balances) addEquity(state.balances);
      drawPrice();
    }
  }
}

function showStop(stop) {
  $("stop").textContent = stop.active ? "STOPPED: " + stop.reason : "trading";
  $("stop").className = "badge " + (stop.active ? "alert" : "on");
}

function addEquity(balances) {
  state.balances = balances;
  let total = 0;
  for (const [currency, parts] of Object.entries(balances)) {
    const amount = Number(parts.total || 0);
    if (["USDT", "USDC", "BUSD", "USD"].includes(currency)) total += amount;
    else if (state.prices[currency + "/USDT"]) total += amount * state.prices[currency + "/USDT"];
  }
  state.equity.push({ t: Date.now(), v: total });
  state.equity = state.equity.slice(-500);
  $("balances").textContent = Object.entries(balances)
    .filter(([, p]) => Number(p.total || 0) !== 0)
    .map(([c, p]) => c + " " + p.total).join(" · ");
  drawLine($("equity-chart"), state.equity.map((p) => p.v), "#58a6ff");
}

function addFill(order) {
  if (order.symbol !== state.symbol || !order.average_price) return;
  state.fills.push({ t: Date.parse(order.updated_at), side: order.side, price: Number(order.average_price) });
  drawPrice();
}

function row(cells, button) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = fmt(cell);
    tr.appendChild(td);
  }
  const td = document.createElement("td");
  if (button) td.appendChild(button);
  tr.appendChild(td);
  return tr;
}

function button(text, action, enabled) {
  const b = document.createElement("button");
  b.textContent = text;
  b.disabled = !enabled;
  b.onclick = action;
  return b;
}

function renderPositions() {
  const body = $("positions").querySelector("tbody");
  body.innerHTML = "";
  for (const p of state.positions) {
    const close = button("Close", () => manual({ kind: "close", symbol: p.symbol }), canTrade());
    close.className = "close-position";
    close.dataset.symbol = p.symbol;
    body.appendChild(row([p.symbol, p.amount, p.avg_entry_price, p.last_price, p.stop_loss,
                          p.take_profit], close));
  }
}

function renderOrders() {
  const body = $("orders").querySelector("tbody");
  body.innerHTML = "";
  for (const o of state.orders) {
    const cancel = button("Cancel", () => call("cancel", { order: o.client_order_id }), canTrade());
    body.appendChild(row([o.symbol, o.side, o.type, o.amount, o.price || o.stop_price, o.status],
                         cancel));
  }
}

function renderDecisions() {
  const list = $("decisions");
  list.innerHTML = "";
  for (const d of [...state.decisions].reverse()) {
    const li = document.createElement("li");
    li.textContent = `${d.created_at.slice(0, 19)} ${d.symbol || ""} ${d.type}: ${d.reasons.join(", ")} ${d.message || ""}`;
    list.appendChild(li);
  }
}

function call(op, args) {
  return new Promise((resolve) => {
    const id = ++state.callId;
    state.calls[id] = (message) => {
      if (message.type === "error") say(message.code + ": " + message.detail);
      resolve(message);
    };
    send({ type: "call", id, op, args });
  });
}

async function manual(request, confirm) {
  const answer = await call("manual", { request, confirm: confirm || null });
  if (answer.type !== "result") return;
  const outcome = answer.data;
  if (outcome.status === "NEEDS_CONFIRMATION") {
    state.pending = { request, token: outcome.token };
    $("confirm-text").textContent = "REAL: " + outcome.action + " — confirm?";
    $("confirm-box").hidden = false;
  } else {
    say(outcome.action + ": " + outcome.status + (outcome.message ? " (" + outcome.message + ")" : ""));
  }
}

function say(text) { $("message").textContent = text; }

async function loadChart() {
  if (!state.symbol) return;
  try {
    state.candles = await api("/api/candles?symbol=" + encodeURIComponent(state.symbol));
    const closed = await api("/api/orders/closed");
    state.fills = closed
      .filter((o) => o.symbol === state.symbol && o.average_price && Number(o.filled) > 0)
      .map((o) => ({ t: Date.parse(o.updated_at), side: o.side, price: Number(o.average_price) }));
  } catch (err) {
    say("chart: " + err.message);
  }
  drawPrice();
}

function drawLine(canvas, values, color) {
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (values.length < 1) return;
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  g.strokeStyle = color;
  g.beginPath();
  values.forEach((v, i) => {
    const x = values.length === 1 ? canvas.width / 2 : (i / (values.length - 1)) * canvas.width;
    const y = canvas.height - 10 - ((v - lo) / span) * (canvas.height - 20);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#8b949e";
  g.fillText(hi.toFixed(2), 4, 12);
  g.fillText(lo.toFixed(2), 4, canvas.height - 4);
}

function drawPrice() {
  const canvas = $("price-chart");
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const candles = state.candles;
  if (!candles.length) return;
  const position = state.positions.find((p) => p.symbol === state.symbol);
  const levels = position ? [position.stop_loss, position.take_profit].filter(Boolean).map(Number) : [];
  const lows = candles.map((c) => c[3]), highs = candles.map((c) => c[2]);
  const lo = Math.min(...lows, ...levels), hi = Math.max(...highs, ...levels), span = hi - lo || 1;
  const w = canvas.width / candles.length;
  const y = (p) => canvas.height - 10 - ((p - lo) / span) * (canvas.height - 20);
  candles.forEach(([, open, high, low, close], i) => {
    g.strokeStyle = g.fillStyle = close >= open ? "#3fb950" : "#ff7b72";
    g.beginPath(); g.moveTo(i * w + w / 2, y(high)); g.lineTo(i * w + w / 2, y(low)); g.stroke();
    g.fillRect(i * w + 1, Math.min(y(open), y(close)), Math.max(1, w - 2), Math.max(1, Math.abs(y(open) - y(close))));
  });
  const t0 = candles[0][0], t1 = candles[candles.length - 1][0] || t0 + 1;
  for (const fill of state.fills) {
    const x = Math.min(canvas.width - 6, Math.max(6, ((fill.t - t0) / (t1 - t0 || 1)) * canvas.width));
    g.fillStyle = fill.side === "buy" ? "#3fb950" : "#ff7b72";
    g.font = "14px sans-serif";
    g.fillText(fill.side === "buy" ? "▲" : "▼", x - 6, y(fill.price) + (fill.side === "buy" ? 16 : -4));
  }
  if (position) {
    for (const [value, color] of [[position.stop_loss, "#f0883e"], [position.take_profit, "#58a6ff"]]) {
      if (!value) continue;
      g.strokeStyle = color; g.setLineDash([6, 4]);
      g.beginPath(); g.moveTo(0, y(Number(value))); g.lineTo(canvas.width, y(Number(value))); g.stroke();
      g.setLineDash([]);
    }
  }
}

$("login-form").addEventListener("submit", login);
$("pause").onclick = () => call("pause", { reason: "paused from the dashboard" }).then((m) => m.data && showStop(m.data.emergency_stop));
$("resume").onclick = () => call("resume", { reason: "resumed from the dashboard" }).then((m) => m.data && showStop(m.data.emergency_stop));
$("estop").onclick = () => call("emergency_stop", { reason: "emergency stop from the dashboard" }).then((m) => m.data && showStop(m.data.emergency_stop));
$("confirm-go").onclick = () => {
  const pending = state.pending;
  $("confirm-box").hidden = true;
  state.pending = null;
  if (pending) manual(pending.request, pending.token);
};
$("confirm-cancel").onclick = () => { $("confirm-box").hidden = true; state.pending = null; };
$("symbol").onchange = async (event) => {
  const old = "prices:" + state.symbol;
  state.symbol = event.target.value;
  await loadChart();
  delete state.seq[old];
  subscribe(["prices:" + state.symbol]);
};
setInterval(() => send({ type: "ping", t: Date.now() }), 20000);
