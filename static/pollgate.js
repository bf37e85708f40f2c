/*! pollgate.js (MIT) */
/*
 * pollgate.js, the browser client of a pollgate gateway: docs/CLIENT.md.
 * Plain ES5, no dependencies; IE7 (and IE8 in compatibility mode) need a JSON polyfill such as
 * json2.js loaded first. A <script> gives the global Pollgate; CommonJS and AMD get it as a module.
 *
 * Sections: helpers and storage; request transports (xhr, xdr, jsonp) and push transports
 * (websocket, sse), each with isUsable(); the transport choice; the client: its state, the receive
 * loop (fallback, dedupe, backoff, the cursor kept per tab), tokens, the outbox, one connection
 * shared by many tabs, and the public methods. Every transport feeds the same batch() / fail()
 * pair, so the cursor, dedupe and state are shared and a switch of transport loses nothing.
 */
(function (root, factory) {
  if (typeof define === 'function' && define.amd) define([], factory);
  else if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.Pollgate = factory();
}(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var win = typeof window !== 'undefined' ? window : null;
  var counter = 0;

  // ---- helpers -------------------------------------------------------------------------------

  function noop() {}

  function now() {
    return new Date().getTime();
  }

  /** Copies the fields of `source` (a plain object) that are set. */
  function extend(target, source) {
    for (var k in source) if (source[k] != null) target[k] = source[k];
    return target;
  }

  /** A stream name or an array of them, as an array. */
  function listOf(streams) {
    return typeof streams === 'string' ? [streams] : streams;
  }

  function indexOf(list, item) {
    for (var i = 0; i < list.length; i++) if (list[i] === item) return i;
    return -1;
  }

  /** A random id of [a-z0-9]: idempotency keys and connection ids (unique, not secret). */
  function randomId(length) {
    var s = now().toString(36);
    while (s.length < length) s += Math.floor(Math.random() * 2176782336).toString(36);
    return s.slice(0, length);
  }

  /** Adds query parameters (null and undefined ones left out), plus a unique `_` on GETs: old IE serves cached answers to repeated GETs. */
  function withQuery(url, params, get) {
    var out = get ? ['_=' + now().toString(36) + (++counter)] : [];
    for (var k in params) if (params[k] != null) out.push(encodeURIComponent(k) + '=' + encodeURIComponent(params[k]));
    return out.length ? url + (url.indexOf('?') < 0 ? '?' : '&') + out.join('&') : url;
  }

  function listen(target, type, fn) {
    if (!target) return noop;
    if (target.addEventListener) {
      target.addEventListener(type, fn, false);
      return function () { target.removeEventListener(type, fn, false); };
    }
    if (target.attachEvent) {
      target.attachEvent('on' + type, fn);
      return function () { target.detachEvent('on' + type, fn); };
    }
    return noop;
  }

  function origin(url) {
    var m = /^(https?:)\/\/([^\/?#]+)/i.exec(url);
    if (!m) return null;
    var scheme = m[1].toLowerCase();
    var host = m[2].toLowerCase().replace(scheme === 'http:' ? /:80$/ : /:443$/, '');
    return scheme + '//' + host;
  }

  /** True when `url` is on the page's own origin (or there is no page, as in Node). */
  function sameOrigin(url) {
    var loc = win && win.location;
    var o = origin(url);
    return !loc || !o || o === origin(loc.protocol + '//' + loc.host);
  }

  function makeError(code, message, status, retryAfter) {
    var e = new Error(message || code);
    e.code = code;
    e.status = status || 0;
    if (retryAfter) e.retryAfter = retryAfter;
    return e;
  }

  function timedOut(ms) {
    return makeError('timeout', 'no answer in ' + ms + ' ms');
  }

  // Errors that arrive without a status (JSONP and XDR answers are 200; WebSocket frames have none)
  // get the gateway's: every code of lib/errors.ts (spec/client/status-table.spec.ts).
  var STATUS_OF = {
    bad_request: 400, invalid_cursor: 400, limit_exceeded: 400, unauthorized: 401, forbidden: 403, not_found: 404, method_not_allowed: 405,
    request_timeout: 408, payload_too_large: 413, unsupported_media_type: 415, rate_limited: 429, headers_too_large: 431, internal: 500,
    overloaded: 503, store_unavailable: 503, shutting_down: 503, hook_unavailable: 503
  };

  /**
   * Turns what a transport received into done(err, json). `body` is text, or an object (JSONP, an
   * SSE `end` event). Status 0 and IE's 12xxx codes are network failures; 1223 is IE's 204.
   */
  function settle(done, status, body, retryAfter) {
    if (status === 1223) status = 204;
    if (status === 0 || status >= 12000) return done(makeError('network', 'network error'));
    var json = typeof body === 'string' ? body ? parse(body) || null : {} : body;
    var error = json && json.error;
    if (error) return done(makeError(error.code || 'error', error.message, status >= 400 ? status : STATUS_OF[error.code] || 500, Number(retryAfter) || 0));
    // Not ours (a proxy's or captive portal's page): retried like a network failure.
    if (!json) return done(makeError('bad_response', 'not a gateway answer (HTTP ' + status + ')', status));
    if (status < 200 || status > 299) return done(makeError('http_' + status, 'unexpected answer (HTTP ' + status + ')', status, Number(retryAfter) || 0));
    done(null, json);
  }

  /** Calls done at most once, or with a timeout error after timeoutMs; .cancel() silences it. */
  function once(done, timeoutMs, onTimeout) {
    var finished = false;
    var timer = setTimeout(function () {
      if (finished) return;
      onTimeout();
      guarded(timedOut(timeoutMs));
    }, timeoutMs);
    function guarded(err, json) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      done(err, json);
    }
    guarded.cancel = function () {
      finished = true;
      clearTimeout(timer);
    };
    return guarded;
  }

  /**
   * Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2^attempt)) ms.
   * `random` defaults to Math.random (tests pass their own).
   */
  function backoff(attempt, base, cap, random) {
    var ceiling = Math.min(cap, base * Math.pow(2, Math.min(attempt, 30)));
    return Math.floor((random || Math.random)() * ceiling);
  }

  function isOffline() {
    return !!(win && win.navigator && win.navigator.onLine === false);
  }

  /** The JSON value of `text`; undefined when it is not JSON. */
  function parse(text) {
    try {
      return JSON.parse(text);
    } catch (e) {}
  }

  /**
   * When to fetch a fresh token: 3/4 of a JWT's life (its exp - iat, so the clocks need not agree),
   * in ms, at least 1 s; 0 when it is not a JWT or the browser has no atob (IE9 and older).
   */
  function refreshDelay(token) {
    try {
      var claims = JSON.parse(win.atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      return Math.min(2e9, Math.max(1000, (claims.exp - (claims.iat || now() / 1000)) * 750)) || 0;
    } catch (e) {
      return 0;
    }
  }

  /** win[name] (localStorage, sessionStorage) when it exists and takes writes (Safari's private mode throws); else null. */
  function storage(name) {
    try {
      var s = win[name];
      s.setItem('pollgate', '1');
      s.removeItem('pollgate');
      return s;
    } catch (e) {
      return null;
    }
  }

  /** The JSON value stored under `key`; null when there is none (or no storage). */
  function load(s, key) {
    try {
      return JSON.parse(s.getItem(key));
    } catch (e) {
      return null;
    }
  }

  /** Stores `value` as JSON, or removes the key when it is null. A full or missing storage is ignored. */
  function store(s, key, value) {
    try {
      if (value == null) s.removeItem(key);
      else s.setItem(key, JSON.stringify(value));
    } catch (e) {}
  }

  // ---- request transports --------------------------------------------------------------------
  // A request is { url, path, params, body, token, timeoutMs }: `params` travel in the query, `body`
  // (an object, or null for a poll) is POSTed. request() calls done(err, json) once and returns abort().

  var transports = {};

  /**
   * The longest URL a poll is sent as a GET: IE takes 2,083 characters at most, and a server's limit
   * on a request's head (Node's is 16 KiB) is not far beyond a poll of many long stream names and
   * their cursor. A longer poll is POSTed, its parameters as the JSON body.
   */
  var MAX_GET_URL = 2000;

  /** XMLHttpRequest: same origin, or cross-origin where the browser does CORS (IE10+, all others). */
  transports.xhr = {
    isUsable: function (url) {
      if (typeof XMLHttpRequest === 'undefined') return false;
      return sameOrigin(url) || 'withCredentials' in new XMLHttpRequest();
    },
    request: function (req, done) {
      var x = new XMLHttpRequest();
      var finish = once(done, req.timeoutMs, function () { x.abort(); });
      var body = req.body;
      var url = withQuery(req.url + req.path, req.params, !body);
      if (!body && url.length > MAX_GET_URL) {
        body = req.params;
        url = req.url + req.path;
      }
      var get = !body;
      x.open(get ? 'GET' : 'POST', url, true);
      if (req.token) x.setRequestHeader('Authorization', 'Bearer ' + req.token);
      if (!get) x.setRequestHeader('Content-Type', 'application/json');
      x.onreadystatechange = function () {
        if (x.readyState !== 4) return;
        var status = 0;
        try {
          status = x.status;
        } catch (e) {}
        settle(finish, status, x.responseText, status && x.getResponseHeader('Retry-After'));
      };
      x.send(get ? null : JSON.stringify(body));
      return function () {
        finish.cancel();
        x.abort();
      };
    }
  };

  /**
   * IE8/9 XDomainRequest: GET/POST only, no custom headers, text/plain, same scheme as the page, no
   * status. So everything is POSTed as a JSON text body with the token in it, and `transport=xdr`
   * asks the gateway to answer errors with 200 so their bodies can be read.
   */
  transports.xdr = {
    isUsable: function (url) {
      var loc = win && win.location;
      return !!(win && win.XDomainRequest) && !sameOrigin(url) && !!loc && (origin(url) || '').indexOf(loc.protocol) === 0;
    },
    request: function (req, done) {
      var x = new win.XDomainRequest();
      var finish = once(done, req.timeoutMs + 1000, function () { x.abort(); });
      var body = extend(extend({}, req.body || req.params), { token: req.token });
      x.timeout = req.timeoutMs;
      x.onload = function () { settle(finish, 200, x.responseText); };
      x.onerror = function () { finish(makeError('network', 'network error')); };
      x.ontimeout = function () { finish(timedOut(req.timeoutMs)); };
      // IE aborts XDRs early unless onprogress is set and send() runs after the current task.
      x.onprogress = noop;
      x.open('POST', withQuery(req.url + req.path, { transport: 'xdr' }, false));
      var sent = setTimeout(function () { x.send(JSON.stringify(body)); }, 0);
      return function () {
        finish.cancel();
        clearTimeout(sent);
        x.abort();
      };
    }
  };

  /** JSONP: receive-only, for cross-origin pages without CORS (the gateway must enable it). */
  transports.jsonp = {
    isUsable: function () {
      return !!(win && win.document);
    },
    request: function (req, done) {
      var doc = win.document;
      var name = '__pollgate' + randomId(8) + (++counter);
      var script = doc.createElement('script');
      var parent = doc.getElementsByTagName('head')[0] || doc.documentElement;
      function cleanup() {
        // A late answer still calls the name: keep a no-op there for a while.
        win[name] = noop;
        script.onload = script.onerror = script.onreadystatechange = null;
        if (script.parentNode) script.parentNode.removeChild(script);
        setTimeout(function () {
          try {
            delete win[name];
          } catch (e) {
            win[name] = undefined;
          }
        }, 120000);
      }
      var finish = once(done, req.timeoutMs, cleanup);
      win[name] = function (json) {
        cleanup();
        settle(finish, 200, json);
      };
      script.onerror = function () {
        cleanup();
        finish(makeError('network', 'script load failed'));
      };
      script.async = true;
      script.src = withQuery(req.url + req.path, extend(extend({}, req.params), { token: req.token, callback: name }), true);
      parent.appendChild(script);
      return function () {
        finish.cancel();
        cleanup();
      };
    }
  };

  // ---- push transports ------------------------------------------------------------------------
  // open(c, sink) connects and returns { close(), send?(item, timeoutMs, cb), subscribe?(streams),
  // unsubscribe?(streams), auth?(token) }. `c` is the client's connection context: { url, o (the
  // options), token, streams, from(params) (adds the cursor, or `since`) }. A transport hands what
  // it receives to sink.batch(json) (the /poll answer's shape) and calls sink.fail(err) once when
  // the connection ends. Docs: docs/PROTOCOL.md.

  // Close codes that are a refusal, not a lost connection: 4000 + the HTTP status (docs/PROTOCOL.md).
  var CLOSE_CODES = { 4401: 'unauthorized', 4403: 'forbidden', 4429: 'rate_limited' };

  /** WebSocket: the token goes in the first frame (out of URLs and logs), then subscribe; sends wait for `ack`. */
  transports.websocket = {
    isUsable: function () {
      return !!(win && win.WebSocket);
    },
    open: function (c, sink) {
      var loc = win.location;
      var ws = new win.WebSocket((/^https?:/i.test(c.url) ? c.url : loc.protocol + '//' + loc.host + c.url).replace(/^http/i, 'ws') + '/ws');
      var acks = {};
      var idle;
      var conn;
      // Browsers answer the server's pings without showing them: a socket silent for pollTimeout gets
      // a ping frame, and is given up on when not even the pong comes back (a proxy dropped it).
      function watch() {
        clearTimeout(idle);
        idle = setTimeout(function () {
          frame({ type: 'ping' });
          idle = setTimeout(function () {
            conn.close();
            sink.fail(makeError('timeout', 'websocket went silent'));
          }, c.o.timeoutMargin * 1000);
        }, c.o.pollTimeout * 1000);
      }
      function frame(f) {
        if (ws.readyState === 1) ws.send(JSON.stringify(f));
        return ws.readyState === 1;
      }
      function subscribe(streams) {
        frame(c.from({ type: 'subscribe', streams: streams }));
      }
      ws.onopen = function () {
        watch();
        if (c.token) frame({ type: 'auth', token: c.token });
        subscribe(c.streams);
      };
      ws.onmessage = function (e) {
        var f = parse(e.data) || {};
        watch();
        var ack = acks[f.ref];
        var err = f.type === 'error' && makeError(f.code, f.message, STATUS_OF[f.code] || 500);
        if (ack && (err || f.type === 'ack')) ack(err, f);
        else if (err && f.ref == null) sink.fail(err);
        else if (f.type === 'messages' || f.type === 'subscribed') sink.batch(f);
      };
      function drop() {
        clearTimeout(idle);
        for (var ref in acks) acks[ref](makeError('network', 'websocket closed'));
      }
      ws.onclose = function (e) {
        drop();
        var code = CLOSE_CODES[e.code];
        sink.fail(code ? makeError(code, e.reason, e.code - 4000) : makeError('network', 'websocket closed (' + e.code + ')'));
      };
      conn = {
        close: function () {
          ws.onclose = ws.onmessage = ws.onopen = null;
          ws.close();
          drop();
        },
        send: function (item, timeoutMs, done) {
          var finish = acks[item.id] = once(function (err, ack) {
            delete acks[item.id];
            done(err, ack);
          }, timeoutMs, noop);
          if (!frame({ type: 'send', stream: item.stream, data: item.data, id: item.id, ref: item.id })) finish(makeError('network', 'websocket not open'));
        },
        subscribe: subscribe,
        unsubscribe: function (streams) {
          frame({ type: 'unsubscribe', streams: streams });
        },
        // A fresh token in-band: the socket and its subscriptions stay (docs/PROTOCOL.md, "Token expiry").
        auth: function (token) {
          frame({ type: 'auth', token: token });
        }
      };
      return conn;
    }
  };

  /**
   * Server-Sent Events: the token and cursor travel in the URL (EventSource sets no headers). The
   * client, not the browser, reconnects: always on a fresh EventSource from its own cursor.
   */
  transports.sse = {
    isUsable: function () {
      return !!(win && win.EventSource);
    },
    open: function (c, sink) {
      var es = new win.EventSource(withQuery(c.url + '/sse', c.from({ streams: c.streams.join(','), token: c.token }), false));
      var idle;
      function close() {
        clearTimeout(idle);
        es.close();
      }
      function end(err) {
        close();
        sink.fail(err);
      }
      // The gateway pings every sse.keepAliveMs. A proxy that buffers the stream holds those back
      // too, so a stream silent for as long as a poll may be is not getting through: `buffered`
      // makes the client fall back to long-polling even after the stream was live.
      function watch() {
        clearTimeout(idle);
        idle = setTimeout(function () { end(makeError('buffered', 'event stream went silent')); }, (c.o.pollTimeout + c.o.timeoutMargin) * 1000);
      }
      // Every event's id is the cursor just after it; `end` (the token expired) carries an error body.
      function on(type) {
        es.addEventListener(type, function (e) {
          var d = parse(e.data) || {};
          var json = { cursor: e.lastEventId };
          watch();
          if (type === 'end') return settle(end, 401, d);
          if (type === 'message') json.messages = [d];
          if (type === 'gap') json.gaps = [d];
          if (type === 'reset') json.resets = [d.stream];
          if (type !== 'ping') sink.batch(json);
        }, false);
      }
      var types = ['message', 'ready', 'gap', 'reset', 'ping', 'end'];
      for (var i = 0; i < types.length; i++) on(types[i]);
      es.onerror = function () {
        end(makeError('network', 'event stream failed'));
      };
      watch();
      return { close: close };
    }
  };

  // ---- the transport choice -------------------------------------------------------------------

  var POLLERS = ['xhr', 'xdr', 'jsonp'];

  function usable(name, url) {
    return !!transports[name] && transports[name].isUsable(url);
  }

  /** The usable transports from `wanted` ('polling' is the first usable of xhr, xdr, jsonp), in order. Throws when there is none. */
  function chooseTransports(url, wanted) {
    var out = [];
    for (var i = 0; i < wanted.length; i++) {
      var name = wanted[i];
      for (var j = 0; name === 'polling' && j < POLLERS.length; j++) if (usable(POLLERS[j], url)) name = POLLERS[j];
      if (usable(name, url)) out.push(name);
    }
    if (!out.length) throw new Error('pollgate: no transport of ' + wanted.join() + ' can reach ' + url + ' from this page');
    return out;
  }

  /** The request transport for single requests (a tab's catch-up poll, sends): the first of `modes`, else xhr or xdr. */
  function chooseRequester(url, modes) {
    for (var i = 0; i < modes.length; i++) if (transports[modes[i]].request) return modes[i];
    return usable('xhr', url) ? 'xhr' : usable('xdr', url) ? 'xdr' : null;
  }

  // ---- the client ----------------------------------------------------------------------------

  var DEFAULTS = {
    url: '',
    streams: [],
    transport: 'auto',
    transports: ['websocket', 'sse', 'polling'],
    connectTimeout: 10000,
    upgradeInterval: 120000,
    pollTimeout: 25,
    timeoutMargin: 15,
    sendTimeout: 15000,
    backoffBase: 500,
    backoffCap: 30000,
    sendRetries: 3,
    since: 'now',
    autoConnect: true
  };

  // Besides network errors and timeouts (no status), 408 and 5xx: a page that is not the gateway's,
  // a rate limit and a refused token are worth another try.
  var RETRYABLE = { bad_response: 1, rate_limited: 1, unauthorized: 1 };

  function retryable(err) {
    return RETRYABLE[err.code] === 1 || !err.status || err.status >= 500 || err.status === 408;
  }

  /** How long a transport that failed is skipped, on later page loads too (ms). */
  var REMEMBER_MS = 86400000;
  /** Sharing: the leading tab renews its lease this often (ms); a lease not renewed for LEASE_MS is taken over. */
  var BEAT_MS = 1000;
  var LEASE_MS = 4000;

  /**
   * new Pollgate(options): receives options.streams and emits 'message' per new message, once, in
   * order per stream. See docs/CLIENT.md for options, events and what the client keeps in storage.
   * Throws when no transport fits.
   */
  function Pollgate(options) {
    if (!(this instanceof Pollgate)) return new Pollgate(options);
    var self = this;
    var o = extend(extend({}, DEFAULTS), options || {});
    o.url = String(o.url).replace(/\/+$/, '');
    if (!o.token && !o.getToken) throw new Error('pollgate: give a token or getToken');
    var modes = chooseTransports(o.url, o.transport !== 'auto' ? [o.transport] : o.transports);
    var poller = chooseRequester(o.url, modes);
    // JSONP can only receive; sends then need the same origin (XHR). On WebSocket they use the socket.
    var sender = poller !== 'jsonp' ? poller : sameOrigin(o.url) && usable('xhr', o.url) ? 'xhr' : null;

    // -- storage: per gateway in localStorage (failed transports, the shared connection), per tab
    // (outbox, cursor) in sessionStorage, or in localStorage under a tab id kept in window.name (it
    // survives reloads) where there is no sessionStorage --
    var key = o.storageKey || 'pollgate:' + o.url;
    var local = storage('localStorage');
    var tab = storage('sessionStorage');
    var tabKey = key;
    var failedKey = key + ':failed';
    if (!tab && (tab = local)) tabKey += ':' + (win.name || (win.name = 'pg' + randomId(12)));

    // -- state --
    /** What the push transports read: { url, o, token, streams, from }. */
    var ctx = { url: o.url, o: o, token: o.token || null, streams: [], from: from };
    var failed = remembered();
    // Unset until first used: the flags (started, closed, fetching, tokenFailed, sending) read as false,
    // the rest as none (stop: how to end the request or connection in flight; push: a live push
    // connection; queue: a follower's batches held during its catch-up).
    var stop, push, timer, upgradeTimer, started, closed, fetching, tokenFailed, refreshTimer, sending, sendTimer, beat, queue, heardFrom, leaseKey;
    var seen = {};
    var handlers = {};
    var attempt = 0;
    var since = o.since;
    var conn = randomId(16);
    var unlisten = [];
    var outbox = load(tab, tabKey + ':outbox');
    var callbacks = {};
    var sendAttempt = 0;
    var sharing = !!(o.share && local && poller);
    var lead = !sharing;
    var chanKey = key + ':share';
    var channel = sharing && win.BroadcastChannel && new win.BroadcastChannel(chanKey);
    var posted = 0;
    var heardN = 0;
    if (!(outbox instanceof Array)) outbox = [];
    if (channel) channel.onmessage = function (e) { hear(e.data); };

    self.streams = ctx.streams;
    self.state = 'connecting';
    self.transport = mode();

    // -- events --

    function emit(event, a, b) {
      var list = (handlers[event] || []).slice();
      for (var i = 0; i < list.length; i++) {
        try {
          list[i].call(self, a, b);
        } catch (e) {
          // An app's listener must not stop delivery: rethrow outside the loop.
          setTimeout(function () { throw e; }, 0);
        }
      }
    }

    function setState(state) {
      var prev = self.state;
      if (prev === state) return;
      self.state = state;
      emit('state', state, prev);
    }

    // -- the receive loop --

    function streamsKey() {
      return ctx.streams.slice().sort().join();
    }

    /** The cursor is kept per tab, page and stream set: a reload or a way back resumes where the page was. */
    function cursorKey() {
      return tabKey + ':cursor:' + (win && win.location || {}).pathname + ':' + streamsKey();
    }

    /** Where a request starts: the cursor, or `since` before the first answer. */
    function from(params) {
      if (self.cursor) params.cursor = self.cursor;
      else params.since = since;
      return params;
    }

    /** The first transport that has not failed; the last one is never given up on. */
    function mode() {
      for (var i = 0; i < modes.length - 1; i++) if (!failed[modes[i]]) return modes[i];
      return modes[i];
    }

    /** Transports that failed in the last REMEMBER_MS, on this page or an earlier one. */
    function remembered() {
      var list = load(local, failedKey) || {};
      for (var m in list) if (!(list[m] > now() - REMEMBER_MS)) delete list[m];
      return list;
    }

    function forget() {
      failed = {};
      store(local, failedKey, null);
    }

    // A proxy that refused the better transports may be gone (a new network): try them again later.
    function upgradeLater() {
      if (upgradeTimer || !o.upgradeInterval) return;
      upgradeTimer = setTimeout(function () {
        upgradeTimer = null;
        forget();
        if (lead && mode() !== self.transport) restart();
      }, o.upgradeInterval);
    }

    function later(ms) {
      clearTimeout(timer);
      timer = setTimeout(function () {
        timer = null;
        receive();
      }, ms);
    }

    /** Ends the request or connection in flight and the pending retry. */
    function halt() {
      clearTimeout(timer);
      timer = push = null;
      if (stop) {
        var s = stop;
        stop = null;
        s();
      }
    }

    function restart() {
      if (!started || closed) return;
      halt();
      later(0);
    }

    /** Online again (browser event, or the network came back for a send): retry now. */
    function wake() {
      if (closed || !started) return;
      if (self.state !== 'online' && !stop) later(0);
      flush();
    }

    // A request in flight is replaced by one naming the new streams; the gateway answers the old one
    // at once (same conn), and a lost answer costs nothing: the cursor moves only with delivered batches.
    function change(verb, streams) {
      var live = push && push[verb] && ctx.streams.length;
      if (sharing) {
        resign();
        leaseKey = key + ':lead:' + streamsKey();
        if (started) elect();
      }
      // A live WebSocket changes its subscriptions in place; other transports reconnect with the new list.
      if (live && !sharing) push[verb](streams);
      else restart();
    }

    /**
     * The next receive step: a poll (held up to pollTimeout once online), or a push connection; in a
     * tab following a shared connection, one immediate poll that catches up from its own cursor.
     */
    function receive() {
      if (closed || stop || !ctx.streams.length || waitToken()) return;
      var m = lead ? mode() : poller;
      var previous = self.transport;
      self.transport = lead ? m : 'shared';
      if (self.transport !== previous) emit('transport', self.transport, previous);
      if (!transports[m].request) return open(m);
      // Until a poll has succeeded, ask for an answer at once: 'online' should not wait for a message.
      var params = from({ streams: ctx.streams.join(','), timeout: lead && self.state === 'online' ? o.pollTimeout : 0, conn: conn, limit: o.limit });
      var aborted = false;
      var abort = noop;
      if (!lead && !queue) {
        // Batches heard from now on wait for the catch-up; those up to the lease's count it covers.
        queue = [];
        var lease = load(local, leaseKey) || {};
        heardFrom = lease.i;
        heardN = lease.n;
      }
      stop = function () {
        aborted = true;
        abort();
      };
      abort = ask(m, '/poll', params, null, (o.pollTimeout + o.timeoutMargin) * 1000, function (err, json) {
        if (aborted) return;
        stop = null;
        if (err) return fail(err);
        batch(json);
        if (lead) later(0);
        else caughtUp();
      });
    }

    /**
     * Connects a push transport. It fails over to the next transport when it ends before delivering
     * anything on a network error or `connectTimeout`, or when it went silent (`buffered`); a live
     * one that ends otherwise reconnects.
     */
    function open(m) {
      var live = false;
      var c;
      var connectTimer = setTimeout(function () { end(timedOut(o.connectTimeout)); }, o.connectTimeout);
      function current() {
        return stop === close;
      }
      function close() {
        clearTimeout(connectTimer);
        c.close();
      }
      function end(err) {
        if (!current()) return;
        halt();
        fail(err, (err.code === 'buffered' || !live && (err.code === 'network' || err.code === 'timeout')) && m);
      }
      stop = close;
      try {
        c = transports[m].open(ctx, {
          batch: function (json) {
            if (!current()) return;
            if (!live) {
              live = true;
              clearTimeout(connectTimer);
              push = c;
            }
            batch(json);
          },
          fail: end
        });
      } catch (e) {
        // e.g. a SecurityError for ws: from an https: page
        c = { close: noop };
        end(makeError('network', e.message));
      }
    }

    /** Applies one answer: resets, gaps, then new messages; advances (and keeps) the cursor. */
    function batch(json) {
      var i;
      attempt = 0;
      since = o.since;
      setState('online');
      var resets = json.resets || [];
      for (i = 0; i < resets.length; i++) {
        // A new log restarts its seqs: forget what was seen of the old one.
        delete seen[resets[i]];
        emit('reset', { stream: resets[i] });
      }
      var gaps = json.gaps || [];
      for (i = 0; i < gaps.length; i++) emit('gap', gaps[i]);
      var messages = json.messages || [];
      for (i = 0; i < messages.length; i++) {
        var m = messages[i];
        // Dedupe and order per stream: only a seq above the last delivered one is new. A WebSocket
        // may still deliver a stream just unsubscribed.
        if (m.seq <= (seen[m.stream] || 0) || indexOf(ctx.streams, m.stream) < 0) continue;
        seen[m.stream] = m.seq;
        emit('message', m);
      }
      if (json.cursor) store(tab, cursorKey(), self.cursor = json.cursor);
      if (sharing && lead) post(json);
      flush();
    }

    /**
     * A failed request: report it, fix what the client can, and retry with backoff, or at once on
     * the next transport when `failedMode` names a transport that did not work (remembered, so the
     * next page load skips it too).
     */
    function fail(err, failedMode) {
      if (closed) return;
      var offline = isOffline();
      if (failedMode && !offline && failedMode !== modes[modes.length - 1]) {
        failed[failedMode] = now();
        store(local, failedKey, failed);
        upgradeLater();
        setState('reconnecting');
        return later(0);
      }
      if (err.code === 'invalid_cursor') {
        // Only a gateway with a new secret rejects our cursor: re-read what is retained; dedupe drops what we saw.
        self.cursor = null;
        since = 'earliest';
      }
      if (err.code === 'unauthorized') authError(err);
      else if (!retryable(err)) emit('error', err);
      setState(offline ? 'offline' : 'reconnecting');
      later(err.code === 'invalid_cursor' ? 0 : Math.max(backoff(attempt++, o.backoffBase, o.backoffCap), (err.retryAfter || 0) * 1000));
    }

    // -- tokens --

    /** 'auth_error', then getToken() if given; requests wait for the new token. */
    function authError(err) {
      emit('auth_error', err);
      if (o.getToken && !fetching) fetchToken();
    }

    /** True while requests wait for a token (fetching the first one when there is none). */
    function waitToken() {
      if (!ctx.token && o.getToken && !fetching && !tokenFailed) fetchToken();
      return fetching;
    }

    function fetchToken() {
      fetching = true;
      o.getToken(function (err, token) {
        fetching = false;
        // A failed fetch is retried on the next 401, after backoff, not in a loop.
        tokenFailed = !!err || !token;
        if (!tokenFailed) return self.setToken(token);
        emit('error', err || makeError('unauthorized', 'getToken gave no token'));
        if (!timer && !stop) later(0);
        flush();
      });
    }

    /** Fetches a fresh token before this one expires (with getToken, for JWTs): the position is kept either way. */
    function refreshLater() {
      clearTimeout(refreshTimer);
      var ms = o.getToken && refreshDelay(ctx.token);
      if (ms) refreshTimer = setTimeout(function () { if (!fetching) fetchToken(); }, ms);
    }

    // -- the outbox: this tab's unsent messages, in order, kept across reloads --

    function saveOutbox() {
      store(tab, tabKey + ':outbox', outbox.length ? outbox : null);
    }

    function flush() {
      if (sending || sendTimer || closed || !outbox.length || !sender || waitToken()) return;
      var item = outbox[0];
      sending = true;
      function done(err, json) {
        sending = false;
        if (closed) return;
        if (err && retryable(err)) return retrySend(err);
        sendAttempt = 0;
        outbox.shift();
        saveOutbox();
        var cb = callbacks[item.id];
        delete callbacks[item.id];
        // A /send answer's first result, or the WebSocket ack frame itself (its `type` and `ref` too).
        var result = json && (json.results ? json.results[0] : json);
        if (err) emit('send_error', err, item);
        else emit('sent', result, item);
        if (cb) cb(err, result);
        flush();
      }
      if (push && push.send) return push.send(item, o.sendTimeout, done);
      ask(sender, '/send', {}, { stream: item.stream, data: item.data, id: item.id }, o.sendTimeout, done);
    }

    /** One request to the gateway with the current token; returns its abort(). */
    function ask(m, path, params, body, ms, done) {
      return transports[m].request({ url: o.url, path: path, params: params, body: body, token: ctx.token, timeoutMs: ms }, done);
    }

    // After `sendRetries` quick retries the outbox waits for the next successful receive.
    function retrySend(err) {
      if (err.code === 'unauthorized') authError(err);
      if (sendAttempt >= o.sendRetries) {
        sendAttempt = 0;
        return;
      }
      var delay = Math.max(backoff(sendAttempt++, o.backoffBase, o.backoffCap), (err.retryAfter || 0) * 1000);
      sendTimer = setTimeout(function () {
        sendTimer = null;
        flush();
      }, delay);
    }

    // -- one connection for many tabs (share: true) --
    // The tabs of one browser with the same gateway and stream set elect a leader through a lease in
    // localStorage; it alone receives, and hands every batch to the others over a BroadcastChannel
    // (or storage events: IE8+). A follower catches up from its own cursor with one immediate poll
    // when it starts and whenever it missed a batch; dedupe hides any overlap.

    /**
     * Every BEAT_MS: the leader renews its lease, with its state and the count of batches it handed
     * on (or steps down if another tab took the lease); a follower takes over an expired one.
     */
    function elect() {
      var lease = load(local, leaseKey);
      var mine = !lease || lease.i === conn || now() - lease.t > LEASE_MS;
      if (mine) store(local, leaseKey, { i: conn, t: now(), s: self.state, n: posted });
      else setState(lease.s);
      if (mine !== lead) {
        lead = mine;
        queue = null;
        restart();
      }
    }

    /** Gives the lease back, so another tab takes over at its next beat. */
    function resign() {
      var lease = load(local, leaseKey);
      if (lease && lease.i === conn) store(local, leaseKey, null);
      lead = false;
    }

    function post(json) {
      var msg = { k: leaseKey, i: conn, n: ++posted, b: json };
      if (channel) channel.postMessage(msg);
      else store(local, chanKey, msg);
    }

    // IE8 fires storage events on document, without a key: read the value then.
    function onStorage(e) {
      if (!e.key || e.key === chanKey) hear(e.key ? parse(e.newValue) : load(local, chanKey));
    }

    /**
     * A batch from the leader: applied when it is the leader's next; skipped when the last catch-up
     * covered it; otherwise some never arrived (storage events coalesce, a write can fail, the
     * leader changed), and the follower catches up from its own cursor first.
     */
    function hear(msg) {
      if (!msg || lead || msg.k !== leaseKey || msg.i === conn) return;
      if (queue) return queue.push(msg);
      if (msg.i === heardFrom && msg.n <= heardN) return;
      if (msg.i !== heardFrom || msg.n > heardN + 1) {
        heardFrom = msg.i;
        heardN = msg.n - 1;
        queue = [msg];
        return restart();
      }
      heardN = msg.n;
      batch(msg.b);
    }

    /** After a follower's catch-up poll: the batches heard meanwhile, in order. */
    function caughtUp() {
      var held = queue || [];
      queue = null;
      for (var i = 0; i < held.length; i++) hear(held[i]);
    }

    // -- public methods --

    /** Adds a listener; returns the client. */
    self.on = function (event, fn) {
      (handlers[event] = handlers[event] || []).push(fn);
      return self;
    };

    /** Removes one listener, or all of an event without fn; returns the client. */
    self.off = function (event, fn) {
      var list = handlers[event] || [];
      if (!fn) delete handlers[event];
      else if (indexOf(list, fn) >= 0) list.splice(indexOf(list, fn), 1);
      return self;
    };

    /** Starts receiving (once the page has loaded, so browsers do not show it as still loading). */
    self.connect = function () {
      if (started || closed) return self;
      started = true;
      setState(isOffline() ? 'offline' : 'connecting');
      function leave() {
        halt();
        if (sharing) resign();
      }
      function begin() {
        if (sharing) {
          elect();
          beat = setInterval(elect, BEAT_MS);
        }
        later(0);
      }
      unlisten.push(
        listen(win, 'online', function () {
          // Transports that failed while the network was down deserve another try.
          forget();
          wake();
        }),
        listen(win, 'offline', function () {
          halt();
          fail(makeError('network', 'browser is offline'));
        }),
        // IE9 leaks open requests on unload; old IE has no pagehide.
        listen(win, 'pagehide', leave),
        listen(win, 'unload', leave),
        // Back from the back-forward cache, where nothing ran.
        listen(win, 'pageshow', function (e) {
          if (e.persisted) restart();
        })
      );
      if (sharing) unlisten.push(listen(win, 'storage', onStorage), listen(win.document, 'storage', onStorage));
      if (mode() !== modes[0]) upgradeLater();
      refreshLater();
      var doc = win && win.document;
      if (doc && doc.readyState && doc.readyState !== 'complete') unlisten.push(listen(win, 'load', begin));
      else begin();
      return self;
    };

    /** Adds streams; they are received from now on, from "now", without losing the others' positions. */
    self.subscribe = function (streams) {
      streams = listOf(streams);
      var added = [];
      for (var i = 0; i < streams.length; i++) {
        if (streams[i] && indexOf(ctx.streams, streams[i]) < 0) {
          ctx.streams.push(streams[i]);
          added.push(streams[i]);
        }
      }
      if (added.length) change('subscribe', added);
      return self;
    };

    /** Removes streams; the next request no longer names them. */
    self.unsubscribe = function (streams) {
      streams = listOf(streams);
      for (var i = 0; i < streams.length; i++) {
        var at = indexOf(ctx.streams, streams[i]);
        if (at >= 0) {
          ctx.streams.splice(at, 1);
          delete seen[streams[i]];
        }
      }
      change('unsubscribe', streams);
      return self;
    };

    /**
     * Replaces the token. A live WebSocket takes it in-band and keeps its subscriptions; an event
     * stream reopens with it; a long-poll uses it from the next request (at once after a 401).
     */
    self.setToken = function (token) {
      ctx.token = token;
      if (push && push.auth) push.auth(token);
      else if (push || self.state !== 'online') restart();
      flush();
      refreshLater();
      return self;
    };

    /**
     * Sends `data` (any JSON value) to `stream`, exactly once thanks to a client-made id: kept in this
     * tab's outbox (in storage where it can) until the gateway confirms it. cb(err, result).
     */
    self.send = function (stream, data, cb) {
      var err = closed ? makeError('closed', 'client is closed') : !sender && makeError('unsupported', 'no CORS to ' + o.url);
      if (err) {
        if (cb) cb(err);
        return null;
      }
      var item = { id: randomId(20), stream: stream, data: data };
      if (cb) callbacks[item.id] = cb;
      outbox.push(item);
      saveOutbox();
      flush();
      return item.id;
    };

    /** Who reads `stream` now (GET /presence): cb(err, { stream, subjects: [{ sub, connections }], count }). */
    self.presence = function (stream, cb) {
      ask(sender || poller, '/presence', { stream: stream }, null, o.sendTimeout, cb);
    };

    /** Messages waiting to be sent, oldest first. */
    self.pending = function () {
      return outbox.slice();
    };

    /** Stops for good; unsent messages stay in this tab's storage for a later client. */
    self.close = function () {
      if (closed) return;
      closed = true;
      halt();
      if (sharing) resign();
      clearTimeout(sendTimer);
      clearTimeout(upgradeTimer);
      clearTimeout(refreshTimer);
      clearInterval(beat);
      if (channel) channel.close();
      for (var i = 0; i < unlisten.length; i++) unlisten[i]();
      unlisten = [];
      setState('closed');
    };

    self.subscribe(o.streams);
    self.cursor = o.cursor || load(tab, cursorKey());
    if (o.autoConnect) self.connect();
  }

  Pollgate.transports = transports;
  Pollgate.backoff = backoff;
  Pollgate.version = '0.1.0';
  return Pollgate;
}));
