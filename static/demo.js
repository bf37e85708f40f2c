/* The demo page: join a room with a demo token, show messages live, send. Plain ES5. */
(function () {
  'use strict';
  var KEEP = 200;
  var client = null;
  var me = '';
  var room = '';

  function $(id) { return document.getElementById(id); }

  function text(el, value) {
    if ('textContent' in el) el.textContent = value;
    else el.innerText = value;
  }

  function on(el, type, fn) {
    if (el.addEventListener) el.addEventListener(type, fn, false);
    else el.attachEvent('on' + type, fn);
  }

  function remember(key, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(key) || '';
      window.localStorage.setItem(key, value);
    } catch (e) {
      return '';
    }
  }

  function showState(state) {
    var el = $('status');
    el.setAttribute('data-state', state);
    text(el, state + (client ? ' \u00b7 ' + client.transport : ''));
  }

  function add(li) {
    var list = $('messages');
    var atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 30;
    list.appendChild(li);
    while (list.children.length > KEEP) list.removeChild(list.firstChild);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function note(message) {
    var li = document.createElement('li');
    li.className = 'note';
    text(li, message);
    add(li);
  }

  function showMessage(m) {
    var data = m.data && typeof m.data === 'object' ? m.data : { text: String(m.data) };
    var li = document.createElement('li');
    var from = document.createElement('span');
    var time = document.createElement('span');
    var body = document.createElement('span');
    li.setAttribute('data-stream', m.stream);
    li.setAttribute('data-seq', String(m.seq));
    li.setAttribute('data-id', m.id);
    if (data.from === me) li.className = 'me';
    from.className = 'from';
    text(from, data.from || 'server');
    time.className = 'time';
    text(time, new Date(m.ts).toLocaleTimeString ? new Date(m.ts).toLocaleTimeString() : '');
    body.className = 'text';
    text(body, data.text === undefined ? JSON.stringify(m.data) : String(data.text));
    li.appendChild(time);
    li.appendChild(from);
    li.appendChild(body);
    add(li);
  }

  function getToken(cb) {
    var x = new XMLHttpRequest();
    x.open('GET', 'demo/token?sub=' + encodeURIComponent(me) + '&_=' + new Date().getTime(), true);
    x.onreadystatechange = function () {
      if (x.readyState !== 4) return;
      var json = null;
      try {
        json = JSON.parse(x.responseText);
      } catch (e) {}
      if (x.status === 200 && json && json.token) return cb(null, json.token);
      cb(new Error(json && json.error ? json.error.message : 'could not get a demo token (HTTP ' + x.status + ')'));
    };
    x.send(null);
  }

  function join(name, roomName) {
    if (client) client.close();
    me = name;
    room = roomName;
    remember('pollgate-demo:name', me);
    remember('pollgate-demo:room', room);
    text($('error'), '');
    $('messages').innerHTML = '';
    // The gateway is where this page is served from: / or its mount (/rt/ for mount /rt).
    var options = { url: window.location.pathname.replace(/[^\/]*$/, ''), streams: ['room:' + room], getToken: getToken };
    // Tests and embedders may tune the client (e.g. a short backoff cap) before the page loads.
    var extra = window.PollgateDemoOptions || {};
    for (var k in extra) if (Object.prototype.hasOwnProperty.call(extra, k)) options[k] = extra[k];
    client = new window.Pollgate(options);
    window.demoClient = client;
    client.on('state', showState);
    client.on('transport', function () { showState(client.state); });
    client.on('message', showMessage);
    client.on('gap', function (g) { note('missed messages ' + g.from + '-' + g.to + ' (no longer retained)'); });
    client.on('reset', function () { note('the room was reset'); });
    client.on('error', function (e) { text($('error'), e.message); });
    client.on('send_error', function (e) { text($('error'), 'not sent: ' + e.message); });
    showState(client.state);
    $('compose').removeAttribute('hidden');
    $('compose').style.display = '';
    $('text').focus();
  }

  on($('join'), 'submit', function (e) {
    if (e.preventDefault) e.preventDefault();
    else e.returnValue = false;
    var name = $('name').value.replace(/^\s+|\s+$/g, '');
    var roomName = $('room').value.replace(/^\s+|\s+$/g, '');
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(name) || !/^[A-Za-z0-9_-]{1,32}$/.test(roomName)) {
      text($('error'), 'Name and room: letters, digits, _ and - only.');
      return;
    }
    join(name, roomName);
  });

  on($('compose'), 'submit', function (e) {
    if (e.preventDefault) e.preventDefault();
    else e.returnValue = false;
    var input = $('text');
    if (!client || !input.value) return;
    client.send('room:' + room, { from: me, text: input.value });
    input.value = '';
  });

  $('name').value = remember('pollgate-demo:name') || 'guest' + Math.floor(Math.random() * 1000);
  $('room').value = remember('pollgate-demo:room') || 'lobby';
}());
