/*!
 * pollgate.js: the browser client of a pollgate gateway. Plain ES5, no dependencies; IE7 (and IE8
 * in compatibility mode) need a JSON polyfill such as json2.js loaded first. Docs: docs/CLIENT.md.
 *
 * Sections: helpers; request transports (xhr, xdr, jsonp) and push transports (websocket, sse), each
 * with isUsable(); the client (transport choice and fallback, poll loop, dedupe, backoff, outbox).
 * Every transport feeds the same client._batch() / client._fail() pair, so the cursor, dedupe and
 * state are shared and a switch of transport loses nothing.
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

  function extend(target, source) {
    for (var k in source) if (Object.prototype.hasOwnProperty.call(source, k) && source[k] != null) target[k] = source[k];
    return target;
  }

  function isArray(v) {
    return Object.prototype.toString.call(v) === '[object Array]';
  }

  function indexOf(list, item) {
    for (var i = 0; i < list.length; i++) if (list[i] === item) return i;
    return -1;
  }

  /** A random id of [a-z0-9]: idempotency keys and connection ids (unique, not secret). */
  function randomId(length) {
    var s = new Date().getTime().toString(36);
    while (s.length < length) s += Math.floor(Math.random() * 2176782336).toString(36);
    return s.slice(0, length);
  }

  function query(params) {
    var out = [];
    for (var k in params) {
      if (Object.prototype.hasOwnProperty.call(params, k) && params[k] !== undefined && params[k] !== null) {
        out.push(encodeURIComponent(k) + '=' + encodeURIComponent(params[k]));
      }
    }
    return out.join('&');
  }

  /** Adds query parameters, plus a unique `_` on GETs: old IE serves cached answers to repeated GETs. */
  function withQuery(url, params, get) {
    if (get) params = extend({ _: new Date().getTime().toString(36) + (++counter) }, params);
    var q = query(params);
    return q ? url + (url.indexOf('?') < 0 ? '?' : '&') + q : url;
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

  // Errors that arrive without a status (JSONP and XDR answers are 200; WebSocket frames have none)
  // get the gateway's: every code of lib/errors.ts (spec/client/status-table.spec.ts).
  var STATUS_OF = {
    bad_request: 400, invalid_cursor: 400, limit_exceeded: 400, unauthorized: 401, forbidden: 403, not_found: 404, method_not_allowed: 405,
    request_timeout: 408, payload_too_large: 413, unsupported_media_type: 415, rate_limited: 429, internal: 500, overloaded: 503,
    store_unavailable: 503, shutting_down: 503
  };

  /**
   * Turns what a transport received into done(err, json). `body` is text, or an object (JSONP).
   * Status 0 and IE's 12xxx codes are network failures; 1223 is IE's 204.
   */
  function settle(done, status, body, retryAfter) {
    if (status === 1223) status = 204;
    if (status === 0 || status >= 12000) return done(makeError('network', 'network error'));
    var json = body;
    if (typeof body === 'string') {
      try {
        json = body ? JSON.parse(body) : {};
      } catch (e) {
        json = null;
      }
    }
    if (json && json.error) {
      var code = json.error.code || 'error';
      return done(makeError(code, json.error.message, status >= 400 ? status : STATUS_OF[code] || 500, Number(retryAfter) || 0));
    }
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
      guarded(makeError('timeout', 'no answer in ' + timeoutMs + ' ms'));
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

  // ---- request transports --------------------------------------------------------------------
  // A request is { url, path, params, body, token, timeoutMs }: `params` travel in the query, `body`
  // (an object, or null for a poll) is POSTed. request() calls done(err, json) once and returns abort().

  var transports = {};

  /** XMLHttpRequest: same origin, or cross-origin where the browser does CORS (IE10+, all others). */
  transports.xhr = {
    isUsable: function (url) {
      if (typeof XMLHttpRequest === 'undefined') return false;
      return sameOrigin(url) || 'withCredentials' in new XMLHttpRequest();
    },
    request: function (req, done) {
      var x = new XMLHttpRequest();
      var finish = once(done, req.timeoutMs, function () { x.abort(); });
      var get = !req.body;
      x.open(get ? 'GET' : 'POST', withQuery(req.url + req.path, req.params, get), true);
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
      x.send(get ? null : JSON.stringify(req.body));
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
      x.ontimeout = function () { finish(makeError('timeout', 'no answer in ' + req.timeoutMs + ' ms')); };
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
  // open(client, sink) connects and returns { close(), send?(item, cb), subscribe?(streams),
  // unsubscribe?(streams) }. It hands what it receives to sink.batch(json) (the /poll answer shape)
  // and calls sink.fail(err) once when the connection ends. Docs: docs/PROTOCOL.md.

  /** `json` from a push frame or event; undefined when it is not JSON (ignored). */
  function parse(text) {
    try {
      return JSON.parse(text);
    } catch (e) {}
  }

  /** WebSocket: the token goes in the first frame (out of URLs and logs), then subscribe; sends wait for `ack`. */
  transports.websocket = {
    isUsable: function () {
      return !!(win && win.WebSocket);
    },
    open: function (client, sink) {
      var loc = win.location;
      var url = client.options.url;
      var ws = new win.WebSocket((/^https?:/i.test(url) ? url : loc.protocol + '//' + loc.host + url).replace(/^http/i, 'ws') + '/ws');
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
          }, client.options.timeoutMargin * 1000);
        }, client.options.pollTimeout * 1000);
      }
      function frame(f) {
        if (ws.readyState === 1) ws.send(JSON.stringify(f));
        return ws.readyState === 1;
      }
      function subscribe(streams) {
        frame(client._from({ type: 'subscribe', streams: streams }));
      }
      ws.onopen = function () {
        watch();
        if (client.token) frame({ type: 'auth', token: client.token });
        subscribe(client.streams);
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
        // 4401: the token was refused (docs/PROTOCOL.md); anything else is a lost connection.
        sink.fail(e.code === 4401 ? makeError('unauthorized', e.reason, 401) : makeError('network', 'websocket closed (' + e.code + ')'));
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
    open: function (client, sink) {
      var params = client._from({ streams: client.streams.join(','), token: client.token });
      var es = new win.EventSource(withQuery(client.options.url + '/sse', params, false));
      // Every event's id is the cursor just after it.
      function on(type) {
        es.addEventListener(type, function (e) {
          var d = parse(e.data) || {};
          var json = { cursor: e.lastEventId };
          if (type === 'message') json.messages = [d];
          if (type === 'gap') json.gaps = [d];
          if (type === 'reset') json.resets = [d.stream];
          sink.batch(json);
        }, false);
      }
      on('message');
      on('ready');
      on('gap');
      on('reset');
      es.onerror = function () {
        es.close();
        sink.fail(makeError('network', 'event stream failed'));
      };
      return {
        close: function () {
          es.close();
        }
      };
    }
  };

  var POLLERS = ['xhr', 'xdr', 'jsonp'];

  function usable(name, url) {
    return !!transports[name] && transports[name].isUsable(url);
  }

  /** The usable transports from `wanted` ('polling' is the first usable of xhr, xdr, jsonp), in order. */
  function chooseTransports(url, wanted) {
    var out = [];
    for (var i = 0; i < wanted.length; i++) {
      var name = wanted[i];
      for (var j = 0; name === 'polling' && j < POLLERS.length; j++) if (usable(POLLERS[j], url)) name = POLLERS[j];
      if (usable(name, url)) out.push(name);
      else if (wanted.length === 1) throw new Error('pollgate: transport "' + name + '" cannot reach ' + url + ' from this page');
    }
    if (!out.length) throw new Error('pollgate: no transport can reach ' + url + ' from this page');
    return out;
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

  var RETRYABLE = { network: 1, timeout: 1, bad_response: 1, rate_limited: 1, store_unavailable: 1, internal: 1, unauthorized: 1 };

  function retryable(err) {
    return RETRYABLE[err.code] === 1 || !err.status || err.status >= 500 || err.status === 408;
  }

  /**
   * new Pollgate(options): polls options.streams and emits 'message' per new message, once, in
   * order per stream. See docs/CLIENT.md for options and events. Throws when no transport fits.
   */
  function Pollgate(options) {
    if (!(this instanceof Pollgate)) return new Pollgate(options);
    var o = this.options = extend(extend({}, DEFAULTS), options || {});
    o.url = String(o.url).replace(/\/+$/, '');
    if (!o.token && !o.getToken) throw new Error('pollgate: give a token or a getToken(callback) function');
    this._modes = chooseTransports(o.url, o.transport !== 'auto' ? [o.transport] : o.transports);
    this._failed = {};
    this.transport = this._modes[0];
    var poller = usable('xhr', o.url) ? 'xhr' : usable('xdr', o.url) ? 'xdr' : null;
    for (var i = this._modes.length - 1; i >= 0; i--) if (transports[this._modes[i]].request) poller = this._modes[i];
    // JSONP can only receive; sends then need the same origin (XHR). On WebSocket they use the socket.
    this._sender = poller !== 'jsonp' ? poller : sameOrigin(o.url) && usable('xhr', o.url) ? 'xhr' : null;
    this.token = o.token || null;
    this.streams = [];
    this.state = 'connecting';
    this.cursor = null;
    this._conn = randomId(16);
    this._seen = {};
    this._handlers = {};
    this._attempt = 0;
    this._abortPoll = null;
    this._timer = null;
    this._since = o.since;
    this._storageKey = o.storageKey || 'pollgate:outbox:' + o.url;
    this._outbox = this._load();
    this._callbacks = {};
    this._sendTimer = null;
    this._sending = false;
    this._sendAttempt = 0;
    this._tokenWaiters = null;
    this._tokenFailed = false;
    this._closed = false;
    this._started = false;
    this._unlisten = [];
    this.subscribe(o.streams);
    if (o.autoConnect) this.connect();
  }

  Pollgate.prototype = {
    /** Adds a listener; returns this. */
    on: function (event, fn) {
      (this._handlers[event] = this._handlers[event] || []).push(fn);
      return this;
    },

    /** Removes one listener, or all of an event without fn; returns this. */
    off: function (event, fn) {
      var list = this._handlers[event];
      if (!list) return this;
      if (!fn) delete this._handlers[event];
      else if (indexOf(list, fn) >= 0) list.splice(indexOf(list, fn), 1);
      return this;
    },

    _emit: function (event, a, b) {
      var list = (this._handlers[event] || []).slice();
      for (var i = 0; i < list.length; i++) {
        try {
          list[i].call(this, a, b);
        } catch (e) {
          // An app's listener must not stop delivery: rethrow outside the loop.
          setTimeout(function () { throw e; }, 0);
        }
      }
    },

    _setState: function (state) {
      var prev = this.state;
      if (prev === state) return;
      this.state = state;
      this._emit('state', state, prev);
    },

    /** Starts polling (once the page has loaded, so browsers do not show it as still loading). */
    connect: function () {
      var self = this;
      if (this._started || this._closed) return this;
      this._started = true;
      this._setState(win && win.navigator && win.navigator.onLine === false ? 'offline' : 'connecting');
      this._unlisten.push(
        listen(win, 'online', function () {
          // Transports that failed while the network was down deserve another try.
          self._failed = {};
          self._wake();
        }),
        listen(win, 'offline', function () {
          self._stopPoll();
          self._fail(makeError('network', 'browser is offline'));
        }),
        // IE9 leaks open requests on unload; old IE has no pagehide.
        listen(win, 'pagehide', function () { self._stopPoll(); }),
        listen(win, 'unload', function () { self._stopPoll(); })
      );
      var doc = win && win.document;
      if (doc && doc.readyState && doc.readyState !== 'complete') {
        this._unlisten.push(listen(win, 'load', function () { self._later(0); }));
      } else {
        this._later(0);
      }
      return this;
    },

    /** Adds streams; they are polled from now on, from "now", without losing the others' positions. */
    subscribe: function (streams) {
      streams = isArray(streams) ? streams : [streams];
      var added = [];
      for (var i = 0; i < streams.length; i++) {
        if (streams[i] && indexOf(this.streams, streams[i]) < 0) {
          this.streams.push(streams[i]);
          added.push(streams[i]);
        }
      }
      if (added.length) this._change('subscribe', added);
      return this;
    },

    /** Removes streams; the next poll no longer names them. */
    unsubscribe: function (streams) {
      streams = isArray(streams) ? streams : [streams];
      for (var i = 0; i < streams.length; i++) {
        var at = indexOf(this.streams, streams[i]);
        if (at >= 0) {
          this.streams.splice(at, 1);
          delete this._seen[streams[i]];
        }
      }
      this._change('unsubscribe', streams);
      return this;
    },

    /** Replaces the token (for example after 'auth_error') and polls with it at once. */
    setToken: function (token) {
      this.token = token;
      this._restartPoll();
      this._flush();
      return this;
    },

    /** Stops polling and sending for good; unsent messages stay in localStorage for a later client. */
    close: function () {
      if (this._closed) return;
      this._closed = true;
      this._stopPoll();
      clearTimeout(this._sendTimer);
      clearTimeout(this._upgradeTimer);
      for (var i = 0; i < this._unlisten.length; i++) this._unlisten[i]();
      this._unlisten = [];
      this._setState('closed');
    },

    // -- the poll loop --

    _stopPoll: function () {
      clearTimeout(this._timer);
      this._timer = null;
      this._push = null;
      if (this._abortPoll) {
        var abort = this._abortPoll;
        this._abortPoll = null;
        abort();
      }
    },

    _later: function (ms) {
      var self = this;
      clearTimeout(this._timer);
      this._timer = setTimeout(function () {
        self._timer = null;
        self._poll();
      }, ms);
    },

    // A poll in flight is replaced by one naming the new streams; the gateway answers the old one
    // at once (same conn), and a lost answer costs nothing: the cursor moves only with delivered batches.
    _change: function (verb, streams) {
      // A live WebSocket changes its subscriptions in place; other transports reconnect with the new list.
      if (this._push && this._push[verb] && this.streams.length) this._push[verb](streams);
      else this._restartPoll();
    },

    _restartPoll: function () {
      if (!this._started || this._closed) return;
      this._stopPoll();
      this._later(0);
    },

    /** Online again (browser event, or the network came back for a send): retry now. */
    _wake: function () {
      if (this._closed || !this._started) return;
      if (this.state !== 'online' && !this._abortPoll) this._later(0);
      this._flush();
    },

    /** Sets where to start in a request: the cursor, or `since` before the first answer. */
    _from: function (params) {
      if (this.cursor) params.cursor = this.cursor;
      else params.since = this._since;
      return params;
    },

    /** The first transport that has not failed; the last one is never given up on. */
    _mode: function () {
      for (var i = 0; i < this._modes.length - 1; i++) if (!this._failed[this._modes[i]]) return this._modes[i];
      return this._modes[i];
    },

    _poll: function () {
      var self = this;
      if (this._closed || this._abortPoll) return;
      if (!this.streams.length) return;
      if (this._whenToken(function () { self._poll(); })) return;
      var o = this.options;
      var mode = this._mode();
      var previous = this.transport;
      this.transport = mode;
      if (mode !== previous) this._emit('transport', mode, previous);
      if (!transports[mode].request) return this._open(mode);
      // Until a poll has succeeded, ask for an answer at once: 'online' should not wait for a message.
      var params = this._from({ streams: this.streams.join(','), timeout: this.state === 'online' ? o.pollTimeout : 0, conn: this._conn });
      if (o.limit) params.limit = o.limit;
      var aborted = false;
      var abort = noop;
      this._abortPoll = function () {
        aborted = true;
        abort();
      };
      abort = transports[this.transport].request({
        url: o.url,
        path: '/poll',
        params: params,
        body: null,
        token: this.token,
        timeoutMs: (o.pollTimeout + o.timeoutMargin) * 1000
      }, function (err, json) {
        if (aborted) return;
        self._abortPoll = null;
        if (err) return self._fail(err);
        self._batch(json);
        self._later(0);
      });
    },

    /**
     * Connects a push transport. It fails over to the next transport when it ends before
     * delivering anything on a network error or `connectTimeout`; a live one that ends reconnects.
     */
    _open: function (mode) {
      var self = this;
      var live = false;
      var conn;
      var timer = setTimeout(function () { end(makeError('timeout', 'no answer in ' + self.options.connectTimeout + ' ms')); }, this.options.connectTimeout);
      function current() {
        return self._abortPoll === stop;
      }
      function stop() {
        clearTimeout(timer);
        conn.close();
      }
      function end(err) {
        if (!current()) return;
        self._stopPoll();
        self._fail(err, !live && (err.code === 'network' || err.code === 'timeout') && mode);
      }
      this._abortPoll = stop;
      try {
        conn = transports[mode].open(this, {
          batch: function (json) {
            if (!current()) return;
            if (!live) {
              live = true;
              clearTimeout(timer);
              self._push = conn;
            }
            self._batch(json);
          },
          fail: end
        });
      } catch (e) {
        // e.g. a SecurityError for ws: from an https: page
        conn = { close: noop };
        end(makeError('network', e.message));
      }
    },

    /** Applies one answer: resets, gaps, then new messages; advances the cursor. */
    _batch: function (json) {
      var i;
      this._attempt = 0;
      this._since = this.options.since;
      this._setState('online');
      var resets = json.resets || [];
      for (i = 0; i < resets.length; i++) {
        // A new log restarts its seqs: forget what was seen of the old one.
        delete this._seen[resets[i]];
        this._emit('reset', { stream: resets[i] });
      }
      var gaps = json.gaps || [];
      for (i = 0; i < gaps.length; i++) this._emit('gap', gaps[i]);
      var messages = json.messages || [];
      for (i = 0; i < messages.length; i++) {
        var m = messages[i];
        // Dedupe and order per stream: only a seq above the last delivered one is new. A WebSocket
        // may still deliver a stream just unsubscribed.
        if (m.seq <= (this._seen[m.stream] || 0) || indexOf(this.streams, m.stream) < 0) continue;
        this._seen[m.stream] = m.seq;
        this._emit('message', m);
      }
      if (json.cursor) this.cursor = json.cursor;
      this._flush();
    },

    /**
     * A failed request: report it, fix what the client can, and retry with backoff, or at once on
     * the next transport when `failed` names a transport that never worked this time.
     */
    _fail: function (err, failed) {
      var self = this;
      var o = this.options;
      if (this._closed) return;
      var offline = win && win.navigator && win.navigator.onLine === false;
      if (failed && !offline && failed !== this._modes[this._modes.length - 1]) {
        this._failed[failed] = 1;
        // Try the better transports again later: a proxy that refused them may be gone (a new network).
        if (!this._upgradeTimer && o.upgradeInterval) {
          this._upgradeTimer = setTimeout(function () {
            self._upgradeTimer = null;
            self._failed = {};
            if (self._mode() !== self.transport) self._restartPoll();
          }, o.upgradeInterval);
        }
        this._setState('reconnecting');
        return this._later(0);
      }
      if (err.code === 'invalid_cursor') {
        // Only a gateway with a new secret rejects our cursor: re-read what is retained; dedupe drops what we saw.
        this.cursor = null;
        this._since = 'earliest';
      }
      if (err.code === 'unauthorized') this._authError(err);
      else if (!retryable(err)) this._emit('error', err);
      this._setState(offline ? 'offline' : 'reconnecting');
      var delay = Math.max(backoff(this._attempt++, o.backoffBase, o.backoffCap), (err.retryAfter || 0) * 1000);
      this._later(err.code === 'invalid_cursor' ? 0 : delay);
    },

    /** 'auth_error', then getToken() if given; requests wait for the new token. */
    _authError: function (err) {
      this._emit('auth_error', err);
      if (this.options.getToken && !this._tokenWaiters) this._refreshToken();
    },

    /** True when fn was queued until a token arrives (fetching the first one if need be). */
    _whenToken: function (fn) {
      if (!this.token && this.options.getToken && !this._tokenWaiters && !this._tokenFailed) this._refreshToken();
      if (this._tokenWaiters) this._tokenWaiters.push(fn);
      return !!this._tokenWaiters;
    },

    _refreshToken: function () {
      var self = this;
      this._tokenWaiters = [];
      this.options.getToken(function (err, token) {
        var waiters = self._tokenWaiters || [];
        self._tokenWaiters = null;
        // A failed fetch is retried on the next 401, after backoff, not in a loop.
        self._tokenFailed = !!err || !token;
        if (self._tokenFailed) self._emit('error', err || makeError('unauthorized', 'getToken gave no token'));
        else self.token = token;
        for (var i = 0; i < waiters.length; i++) waiters[i]();
      });
    },

    // -- sending --

    /**
     * Sends `data` (any JSON value) to `stream`, exactly once thanks to a client-made id: kept in an
     * in-order outbox (in localStorage where it can) until the gateway confirms it. cb(err, result).
     */
    send: function (stream, data, cb) {
      if (this._closed) {
        if (cb) cb(makeError('closed', 'client is closed'));
        return null;
      }
      if (!this._sender) {
        if (cb) cb(makeError('unsupported', 'this page cannot send to ' + this.options.url + ' (no CORS)'));
        return null;
      }
      var item = { id: randomId(20), stream: stream, data: data };
      if (cb) this._callbacks[item.id] = cb;
      this._outbox.push(item);
      this._save();
      this._flush();
      return item.id;
    },

    /** Messages waiting to be sent, oldest first. */
    pending: function () {
      return this._outbox.slice();
    },

    _flush: function () {
      var self = this;
      if (this._sending || this._sendTimer || this._closed || !this._outbox.length || !this._sender) return;
      if (this._whenToken(function () { self._flush(); })) return;
      var item = this._outbox[0];
      var o = this.options;
      this._sending = true;
      function done(err, json) {
        self._sending = false;
        if (self._closed) return;
        if (err && retryable(err)) return self._retrySend(err);
        self._sendAttempt = 0;
        self._outbox.shift();
        self._save();
        var cb = self._callbacks[item.id];
        delete self._callbacks[item.id];
        var result = json && json.results ? json.results[0] : json && { stream: json.stream, seq: json.seq, id: json.id, duplicate: json.duplicate };
        if (err) self._emit('send_error', err, item);
        else self._emit('sent', result, item);
        if (cb) cb(err, result);
        self._flush();
      }
      if (this._push && this._push.send) return this._push.send(item, o.sendTimeout, done);
      transports[this._sender].request({
        url: o.url,
        path: '/send',
        params: {},
        body: { stream: item.stream, data: item.data, id: item.id },
        token: this.token,
        timeoutMs: o.sendTimeout
      }, done);
    },

    // After `sendRetries` quick retries the outbox waits for the next successful poll.
    _retrySend: function (err) {
      var self = this;
      var o = this.options;
      if (err.code === 'unauthorized') this._authError(err);
      if (this._sendAttempt >= o.sendRetries) {
        this._sendAttempt = 0;
        return;
      }
      var delay = Math.max(backoff(this._sendAttempt++, o.backoffBase, o.backoffCap), (err.retryAfter || 0) * 1000);
      this._sendTimer = setTimeout(function () {
        self._sendTimer = null;
        self._flush();
      }, delay);
    },

    _storage: function () {
      try {
        return win && win.localStorage;
      } catch (e) {
        return null;
      }
    },

    _load: function () {
      try {
        var raw = this._storage() && this._storage().getItem(this._storageKey);
        var list = raw ? JSON.parse(raw) : [];
        return isArray(list) ? list : [];
      } catch (e) {
        return [];
      }
    },

    _save: function () {
      try {
        var s = this._storage();
        if (!s) return;
        if (this._outbox.length) s.setItem(this._storageKey, JSON.stringify(this._outbox));
        else s.removeItem(this._storageKey);
      } catch (e) {
        // Full or forbidden storage (Safari private mode): the outbox still lives in memory.
      }
    }
  };

  Pollgate.transports = transports;
  Pollgate.backoff = backoff;
  Pollgate.version = '0.1.0';
  return Pollgate;
}));
