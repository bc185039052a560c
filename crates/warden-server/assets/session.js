// The console's session page: follows the session's output over the API's event stream
// (the cookie session authenticates it), from the last line the page already shows. The
// browser's EventSource reconnects by itself and resumes with Last-Event-ID, so nothing is
// shown twice or lost. Text goes in with textContent: output is never markup.
'use strict';
(function () {
  const out = document.getElementById('output');
  if (!out || out.dataset.live !== 'true') return;
  const state = document.getElementById('output-state');
  const status = document.getElementById('session-status');
  // Terminal escape sequences (colours, cursor moves, titles) and other control characters
  // but line breaks and tabs: the same text the server renders.
  const escapes = /\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-Z\\-_]|[\u0000-\u0008\u000b-\u001f\u007f]/g;
  const atEnd = () => out.scrollTop + out.clientHeight >= out.scrollHeight - 8;
  out.scrollTop = out.scrollHeight;
  const source = new EventSource(out.dataset.stream + '?after=' + encodeURIComponent(out.dataset.after));
  source.addEventListener('output', (e) => {
    const chunk = JSON.parse(e.data);
    const follow = atEnd();
    const span = document.createElement('span');
    span.className = chunk.stream === 'stderr' ? 'stderr' : 'stdout';
    span.textContent = String(chunk.data).replace(escapes, '');
    out.appendChild(span);
    if (follow) out.scrollTop = out.scrollHeight;
  });
  // `2026-12-03T09:28:15.123Z` as the page writes times: `2026-12-03 09:28 UTC`.
  const when = (t) => (t ? t.slice(0, 10) + ' ' + t.slice(11, 16) + ' UTC' : 'not yet');
  const set = (id, text) => {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  };
  source.addEventListener('end', (e) => {
    source.close();
    const end = JSON.parse(e.data);
    if (status) {
      status.textContent = end.status;
      status.className = 'tag status-' + end.status;
    }
    const code = end.exit_code === null || end.exit_code === undefined ? '' : ', exit code ' + end.exit_code;
    state.textContent = 'The session has ended (' + end.status + code + ').';
    // The ended session's facts, and Stop becomes Close.
    const stop = document.getElementById('stop-form');
    if (stop) {
      stop.action = stop.action.replace(/\/stop$/, '/close');
      stop.querySelector('button').textContent = 'Close: remove its worktree';
    }
    fetch(out.dataset.session, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : null))
      .then((s) => {
        if (!s) return;
        set('session-started', when(s.started_at));
        set('session-ended', when(s.ended_at) + (s.exit_code === null ? '' : ' · exit code ' + s.exit_code));
        if (s.isolation) set('session-isolation', s.isolation);
      })
      .catch(() => {});
  });
  source.addEventListener('open', () => { state.textContent = 'Following the output as it arrives.'; });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      state.textContent = 'The connection ended. Reload the page to follow the output again.';
    } else {
      state.textContent = 'Reconnecting…';
    }
  });
})();
