// Local playground: sign in against cognito-local, list categories, start a session, join the LiveKit
// room publishing the microphone, show the avatar and the transcript, poll the session, end it.
// Plain ES module; livekit-client comes from the dev stack's /vendor/livekit-client/ (node_modules).
import * as LK from '/vendor/livekit-client/livekit-client.esm.mjs';

const $ = (id) => document.getElementById(id);

const AGENT_PREFIX = 'agent-';
const AVATAR_IDENTITY = 'bey-avatar-agent';
const TRANSCRIPTION_TOPIC = 'lk.transcription';
// The agent sends the crisis resources on this topic when a student may be in danger (agentimage safety.ts).
const SAFETY_TOPIC = 'counselvideo.safety';
// Shown if a message arrives without a usable list: the card must never be empty.
const FALLBACK_RESOURCES = [
  { label: '988 Suicide & Crisis Lifeline', detail: 'Call or text 988, any time (US)', href: 'tel:988' },
  { label: 'Emergency', detail: 'If you or someone else is in immediate danger, call 911 (US)', href: 'tel:911' },
  { label: 'Campus counseling', detail: 'Your campus counseling center or campus police can help today' },
  { label: 'Outside the US', detail: 'Call your local emergency number' },
];
const POLL_MS = 2000;
const PLAYING_AFTER_FRAMES = 3;
const TERMINAL = new Set(['ended', 'failed']);

const app = {
  config: null,
  idToken: null,
  categories: [],
  selectedCategory: null,
  session: null, // create-room answer
  sessionView: null, // last GET /sessions/{id} answer
  postStartedAt: null, // performance.now() when create-room was sent
  clientAgentMs: null, // create-room sent → the agent seen in the room, by this page
  room: null,
  micTrack: null,
  pollTimer: null,
  endRequested: false,
  busy: false,
  segments: new Map(), // transcript segment id -> <li>
  frameTimer: null,
};

// Timings of the current session in performance.now() milliseconds, read by the end-to-end test and by
// infra/cmd/bench-pool: post (just before create-room is sent), created (its answer), connected (the room
// joined), agentJoined (this page first sees agent-<id> in the room), avatarTrack (the avatar's video
// subscribed), firstAvatarFrame (the first requestVideoFrameCallback on the avatar's video, i.e. a frame
// decoded and presented). null until it happens.
window.__timings = null;

class ApiError extends Error {
  constructor(message, { status = 0, code = '', requestId = '', retryAfter = 0 } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    /** Seconds from the Retry-After header (0 when absent). */
    this.retryAfter = retryAfter;
  }
}

/** Create-room's cost guards: the student's day is used up (429), or every session slot is taken (503). */
const LIMIT_CODES = new Set(['student_limit_reached', 'capacity_reached']);

// ---- the one status line -------------------------------------------------------------------------

// States: loading, config-error, signed-out, signing-in, signin-failed, signed-in, starting,
// mic-denied, limited, connecting, waiting, live, ending, ended, failed.
function setState(state, text, detail = '', requestId = '') {
  const box = $('state');
  box.dataset.state = state;
  $('state-text').textContent = text;
  const d = $('state-detail');
  d.textContent = detail;
  if (requestId) {
    const code = document.createElement('code');
    code.id = 'request-id';
    code.textContent = requestId;
    d.append(detail ? ' — request id ' : 'request id ', code);
  }
}

function showError(state, title, err) {
  const msg = err instanceof Error ? err.message : String(err);
  setState(state, `${title}: ${msg}`, '', err && err.requestId ? err.requestId : '');
}

// ---- HTTP ----------------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${app.idToken}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(app.config.api_url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(`cannot reach the API at ${app.config.api_url} (${e.message})`);
  }
  const requestId = res.headers.get('X-Request-Id') || '';
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(e.message || `HTTP ${res.status}`, {
      status: res.status,
      code: e.code || '',
      requestId: e.request_id || requestId,
      retryAfter: Number.parseInt(res.headers.get('Retry-After') || '0', 10) || 0,
    });
  }
  return { data, requestId };
}

async function signIn(username, password) {
  const url = app.config.cognito_endpoint.replace(/\/+$/, '') + '/';
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': 'AWSCognitoIdentityProviderService.InitiateAuth',
      },
      body: JSON.stringify({
        AuthFlow: 'USER_PASSWORD_AUTH',
        ClientId: app.config.cognito_client_id,
        AuthParameters: { USERNAME: username, PASSWORD: password },
      }),
    });
  } catch (e) {
    throw new Error(`cannot reach cognito-local at ${url} (${e.message})`);
  }
  const body = await res.json().catch(() => ({}));
  const token = body && body.AuthenticationResult && body.AuthenticationResult.IdToken;
  if (!res.ok || !token) {
    throw new Error(body.message || body.__type || `HTTP ${res.status}`);
  }
  return token;
}

function jwtClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return {};
  }
}

// ---- sign in and categories ----------------------------------------------------------------------

async function onSignIn(ev) {
  ev.preventDefault();
  const username = $('username').value.trim();
  const password = $('password').value;
  $('signin-button').disabled = true;
  setState('signing-in', 'Signing in…');
  try {
    app.idToken = await signIn(username, password);
  } catch (e) {
    $('signin-button').disabled = false;
    showError('signin-failed', 'Sign-in failed', e);
    return;
  }
  const claims = jwtClaims(app.idToken);
  const who = $('signed-in-as');
  who.textContent = `Signed in as ${claims.email || claims['cognito:username'] || username} (sub ${claims.sub || '?'}).`;
  who.hidden = false;
  $('signin-button').disabled = false;
  $('signin-button').textContent = 'Sign in again';
  setState('signed-in', 'Signed in. Loading counselors…');
  try {
    const { data } = await api('GET', '/api/v1/counselor-categories');
    app.categories = (data && data.categories) || [];
  } catch (e) {
    showError('failed', 'Could not load the counselor categories', e);
    return;
  }
  renderCategories();
  setState('signed-in', app.categories.length ? 'Signed in. Pick a counselor and start a session.' : 'Signed in, but no counselor categories are enabled.');
}

function renderCategories() {
  const ul = $('categories');
  ul.replaceChildren();
  for (const c of app.categories) {
    const li = document.createElement('li');
    li.dataset.categoryId = c.id;
    const label = document.createElement('label');
    const radio = document.createElement('input');
    radio.type = 'radio';
    radio.name = 'category';
    radio.value = c.id;
    radio.addEventListener('change', () => {
      app.selectedCategory = c;
      $('start-button').disabled = app.busy;
    });
    const name = document.createElement('strong');
    name.className = 'name';
    name.textContent = c.name;
    const desc = document.createElement('span');
    desc.className = 'description';
    desc.textContent = c.description;
    label.append(radio, name, desc);
    li.append(label);
    ul.append(li);
  }
  $('categories-section').hidden = false;
}

// ---- session -------------------------------------------------------------------------------------

function setBusy(busy) {
  app.busy = busy;
  $('start-button').disabled = busy || !app.selectedCategory;
  for (const r of document.querySelectorAll('#categories input')) r.disabled = busy;
}

async function startSession() {
  if (app.busy || !app.selectedCategory) return;
  setBusy(true);
  resetSessionView();

  // The microphone first: without it there is no point in creating a (billed) session.
  setState('starting', 'Asking for your microphone…');
  let micTrack;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    micTrack = stream.getAudioTracks()[0];
  } catch (e) {
    setBusy(false);
    if (e && (e.name === 'NotAllowedError' || e.name === 'SecurityError' || e.name === 'PermissionDeniedError')) {
      setState('mic-denied', 'Microphone permission denied.',
        'The counselor needs to hear you: allow microphone access for this page (the icon in the address bar or the site settings), then press "Start session" again.');
    } else {
      setState('mic-denied', 'No usable microphone.', `${e && e.name ? e.name + ': ' : ''}${e && e.message ? e.message : e}`);
    }
    return;
  }
  app.micTrack = micTrack;

  setState('starting', `Creating a session with the ${app.selectedCategory.name} counselor…`);
  app.postStartedAt = performance.now();
  window.__timings = { post: app.postStartedAt, created: null, connected: null, agentJoined: null, avatarTrack: null, firstAvatarFrame: null };
  let created;
  try {
    ({ data: created } = await api('POST', '/api/v1/video/create-room', { counselor_category: app.selectedCategory.id }));
    window.__timings.created = performance.now();
  } catch (e) {
    stopMic();
    setBusy(false);
    if (e instanceof ApiError && LIMIT_CODES.has(e.code)) {
      // The API's message is written for the student; Retry-After says when trying again makes sense.
      const when = new Date(Date.now() + e.retryAfter * 1000);
      const detail = e.retryAfter
        ? `Try again after ${when.toLocaleString([], { weekday: 'short', hour: '2-digit', minute: '2-digit' })} (Retry-After: ${e.retryAfter} s).`
        : '';
      setState('limited', e.message, detail, e.requestId);
      return;
    }
    showError('failed', 'Session failed to start', e);
    return;
  }
  app.session = created;
  app.endRequested = false;
  $('session-section').hidden = false;
  $('session-section').dataset.sessionId = created.session_id;
  renderStatus({
    session_id: created.session_id,
    status: created.status,
    resumed: created.resumed,
    max_duration_seconds: created.max_duration_seconds,
  });
  startPolling();

  setState('connecting', created.resumed ? 'Rejoining your open session…' : 'Joining the video room…');
  const room = new LK.Room({ adaptiveStream: false, dynacast: false });
  app.room = room;
  wireRoom(room);
  try {
    await room.connect(created.room_url, created.access_token);
    if (window.__timings) window.__timings.connected = performance.now();
    await room.localParticipant.publishTrack(micTrack, { source: LK.Track.Source.Microphone, name: 'microphone' });
  } catch (e) {
    showError('failed', `Could not join the video room (session ${created.session_id})`, e);
    await cleanupRoom();
    // Do not leave an open session behind: the student could not join it.
    api('POST', `/api/v1/video/sessions/${created.session_id}/end`).catch(() => {});
    return;
  }
  $('end-button').disabled = false;
  renderParticipants();
  noteAgentArrival(); // the pool's agent is often in the room before the student
  // Tracks of participants already in the room are subscribed automatically (TrackSubscribed fires).
  if ($('avatar-video').dataset.playing !== 'true') {
    setState('waiting', 'Waiting for the counselor to join…',
      'The counselor joins a few seconds after you (up to a minute or two in the cloud).');
  }
}

function wireRoom(room) {
  room
    .on(LK.RoomEvent.TrackSubscribed, (track, _pub, participant) => {
      if (track.kind === LK.Track.Kind.Video) {
        const video = $('avatar-video');
        track.attach(video);
        video.dataset.from = participant.identity;
        if (participant.identity === AVATAR_IDENTITY) timeFirstAvatarFrame(video);
        watchFrames(video);
      } else if (track.kind === LK.Track.Kind.Audio) {
        const el = track.attach();
        el.dataset.from = participant.identity;
        $('audio-sink').append(el);
      }
      renderParticipants();
    })
    .on(LK.RoomEvent.TrackUnsubscribed, (track) => {
      for (const el of track.detach()) if (el.tagName === 'AUDIO') el.remove();
      renderParticipants();
    })
    .on(LK.RoomEvent.ParticipantConnected, () => {
      renderParticipants();
      noteAgentArrival();
    })
    .on(LK.RoomEvent.ParticipantDisconnected, (p) => {
      renderParticipants();
      if (isCounselor(p.identity) && !app.endRequested && $('state').dataset.state === 'live') {
        setState('ending', 'The counselor left the room…', 'Waiting for the session to be closed.');
      }
    })
    .on(LK.RoomEvent.AudioPlaybackStatusChanged, () => {
      $('enable-audio-button').hidden = room.canPlaybackAudio;
    })
    .on(LK.RoomEvent.Reconnecting, () => setState('connecting', 'Connection lost, reconnecting…'))
    .on(LK.RoomEvent.Reconnected, () => {
      setState($('avatar-video').dataset.playing === 'true' ? 'live' : 'waiting',
        $('avatar-video').dataset.playing === 'true' ? 'Counselor connected — you can talk now.' : 'Waiting for the counselor to join…');
    })
    .on(LK.RoomEvent.Disconnected, (reason) => {
      renderParticipants();
      if (app.endRequested) return;
      // The agent deletes the room when the session is over (or the server closed it).
      const why = reason !== undefined && LK.DisconnectReason ? LK.DisconnectReason[reason] || String(reason) : '';
      setState('ending', 'The room was closed.', `Waiting for the session to be recorded${why ? ` (disconnect reason ${why})` : ''}…`);
      stopMic();
      $('end-button').disabled = true;
      startPolling();
    });
  room.on(LK.RoomEvent.DataReceived, (payload, participant, _kind, topic) => {
    if (topic !== SAFETY_TOPIC || !isCounselor(participant && participant.identity)) return;
    showCrisisCard(payload);
  });
  room.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader, participantInfo) => {
    readTranscription(reader, participantInfo).catch((e) => console.warn('transcription stream failed', e));
  });
}

// One card per session: a repeated message (e.g. after a reconnect) only refreshes it. Rendered with
// textContent, and only tel:/sms:/https: links, whatever the message holds.
function showCrisisCard(payload) {
  let msg = null;
  try {
    msg = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    /* fall back to the built-in list */
  }
  const valid = msg && Array.isArray(msg.resources) && msg.resources.length > 0;
  const resources = valid ? msg.resources : FALLBACK_RESOURCES;
  const card = $('crisis-card');
  $('crisis-title').textContent = (valid && typeof msg.title === 'string' && msg.title) || 'You deserve support right now';
  const list = $('crisis-resources');
  list.replaceChildren();
  for (const r of resources) {
    const li = document.createElement('li');
    li.dataset.resource = String(r.id || '');
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = String(r.label || '');
    const detail = document.createElement(typeof r.href === 'string' && /^(tel:|sms:|https:)/.test(r.href) ? 'a' : 'span');
    if (detail.tagName === 'A') detail.href = r.href;
    detail.textContent = String(r.detail || '');
    li.append(label, detail);
    list.append(li);
  }
  card.dataset.messages = String(Number(card.dataset.messages || '0') + 1);
  card.hidden = false;
}

function isCounselor(identity) {
  return identity === AVATAR_IDENTITY || (identity || '').startsWith(AGENT_PREFIX);
}

function timeFirstAvatarFrame(video) {
  const timings = window.__timings;
  if (!timings || timings.firstAvatarFrame != null || typeof video.requestVideoFrameCallback !== 'function') return;
  if (timings.avatarTrack == null) timings.avatarTrack = performance.now();
  video.requestVideoFrameCallback(() => {
    if (window.__timings === timings && timings.firstAvatarFrame == null) timings.firstAvatarFrame = performance.now();
  });
}

function watchFrames(video) {
  if (app.frameTimer) return;
  let rvfcFrames = 0;
  const update = () => {
    const q = typeof video.getVideoPlaybackQuality === 'function' ? video.getVideoPlaybackQuality() : null;
    const decoded = q ? q.totalVideoFrames : 0;
    const frames = Math.max(rvfcFrames, decoded);
    video.dataset.frames = String(frames);
    video.dataset.size = `${video.videoWidth}x${video.videoHeight}`;
    if (frames >= PLAYING_AFTER_FRAMES && video.dataset.playing !== 'true') {
      video.dataset.playing = 'true';
      $('video-placeholder').hidden = true;
      const s = $('state').dataset.state;
      if (s === 'waiting' || s === 'connecting') {
        setState('live', 'Counselor connected — you can talk now.', `${app.selectedCategory ? app.selectedCategory.name + ' counselor' : 'Counselor'} is on video.`);
      }
    }
  };
  if (typeof video.requestVideoFrameCallback === 'function') {
    const onFrame = (_now, meta) => {
      rvfcFrames = Math.max(rvfcFrames, meta.presentedFrames || 0);
      update();
      if (app.frameTimer) video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }
  app.frameTimer = setInterval(update, 500);
}

async function readTranscription(reader, participantInfo) {
  const attrs = (reader.info && reader.info.attributes) || {};
  const identity = (participantInfo && participantInfo.identity) || '';
  const segmentId = attrs['lk.segment_id'] || reader.info.id;
  const li = transcriptEntry(segmentId, identity);
  // Agent speech arrives as one stream per segment with growing chunks (delta); the student's speech as
  // one stream per interim/final version of the whole text. Showing each stream's accumulated text
  // covers both.
  let text = '';
  for await (const chunk of reader) {
    text += chunk;
    li.querySelector('.text').textContent = text;
    li.dataset.final = 'false';
  }
  li.querySelector('.text').textContent = text;
  li.dataset.final = 'true';
  li.classList.toggle('empty', text.trim() === '');
}

function transcriptEntry(segmentId, identity) {
  let li = app.segments.get(segmentId);
  if (li) return li;
  li = document.createElement('li');
  const local = app.room && app.room.localParticipant && identity === app.room.localParticipant.identity;
  const speaker = local ? 'student' : isCounselor(identity) ? 'counselor' : 'other';
  li.dataset.speaker = speaker;
  li.dataset.identity = identity;
  li.dataset.segmentId = segmentId;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = speaker === 'student' ? 'You' : speaker === 'counselor' ? 'Counselor' : identity || 'Someone';
  who.title = identity;
  const text = document.createElement('span');
  text.className = 'text';
  li.append(who, text);
  $('transcript').append(li);
  app.segments.set(segmentId, li);
  return li;
}

function renderParticipants() {
  const ul = $('participants');
  ul.replaceChildren();
  const room = app.room;
  if (!room || room.state === 'disconnected') {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'not connected';
    ul.append(li);
    return;
  }
  const add = (p, label) => {
    const li = document.createElement('li');
    li.dataset.identity = p.identity;
    const tracks = [...p.trackPublications.values()].map((t) => t.kind).sort().join(' + ');
    li.textContent = `${label} ${tracks ? `(${tracks})` : ''}`;
    li.title = p.identity;
    ul.append(li);
  };
  add(room.localParticipant, 'You');
  for (const p of room.remoteParticipants.values()) {
    const label = p.identity === AVATAR_IDENTITY ? 'Counselor avatar' : p.identity.startsWith(AGENT_PREFIX) ? 'Counselor agent' : p.identity;
    add(p, label);
  }
}

// The first time this page sees the session's agent in the room: POST create-room → agent present.
function noteAgentArrival() {
  const room = app.room;
  if (!room || app.clientAgentMs != null || app.postStartedAt == null) return;
  for (const p of room.remoteParticipants.values()) {
    if (p.identity.startsWith(AGENT_PREFIX)) {
      const now = performance.now();
      app.clientAgentMs = Math.round(now - app.postStartedAt);
      if (window.__timings) window.__timings.agentJoined = now;
      renderTimeToCounselor();
      return;
    }
  }
}

const SOURCE_LABELS = { pool: 'warm pool', cold: 'started for this session' };

// The API's figure (agent_source, time_to_agent_ms: creation → LiveKit's join time) and this page's.
function renderTimeToCounselor() {
  const el = $('time-to-counselor');
  const view = app.sessionView || {};
  el.dataset.source = view.agent_source || '';
  el.dataset.ms = view.time_to_agent_ms != null ? String(view.time_to_agent_ms) : '';
  el.dataset.clientMs = app.clientAgentMs != null ? String(app.clientAgentMs) : '';
  const parts = [];
  if (view.time_to_agent_ms != null) {
    parts.push(`${(view.time_to_agent_ms / 1000).toFixed(2)} s (${SOURCE_LABELS[view.agent_source] || view.agent_source || 'unknown source'})`);
  }
  if (app.clientAgentMs != null) parts.push(`this page: ${(app.clientAgentMs / 1000).toFixed(2)} s from Start to the counselor in the room`);
  el.textContent = parts.length ? parts.join(' · ') : 'measuring…';
}

function resetSessionView() {
  if (app.pollTimer) {
    clearTimeout(app.pollTimer);
    app.pollTimer = null;
  }
  app.session = null;
  app.sessionView = null;
  app.postStartedAt = null;
  app.clientAgentMs = null;
  window.__timings = null;
  renderTimeToCounselor();
  app.segments.clear();
  $('transcript').replaceChildren();
  $('session-status').replaceChildren();
  $('crisis-card').hidden = true;
  $('crisis-card').dataset.messages = '0';
  $('crisis-resources').replaceChildren();
  const video = $('avatar-video');
  video.dataset.frames = '0';
  video.dataset.playing = 'false';
  delete video.dataset.from;
  $('video-placeholder').hidden = false;
  $('end-button').disabled = true;
}

const STATUS_FIELDS = [
  ['status', 'Status'],
  ['session_id', 'Session id'],
  ['category_name', 'Counselor'],
  ['created_at', 'Created'],
  ['agent_joined_at', 'Counselor joined'],
  ['student_joined_at', 'You joined'],
  ['started_at', 'Started'],
  ['ended_at', 'Ended'],
  ['duration_seconds', 'Duration (s)'],
  ['max_duration_seconds', 'Longest (s)'],
  ['end_reason', 'End reason'],
];

function renderStatus(s, note = '') {
  const dl = $('session-status');
  dl.replaceChildren();
  dl.dataset.status = s.status || '';
  for (const [key, label] of STATUS_FIELDS) {
    if (s[key] === undefined || s[key] === null || s[key] === '') continue;
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.dataset.field = key;
    dd.textContent = String(s[key]);
    dl.append(dt, dd);
  }
  if (s.resumed) {
    const dd = document.createElement('dd');
    dd.className = 'muted';
    dd.textContent = 'resumed your open session';
    dl.append(document.createElement('dt'), dd);
  }
  if (note) {
    const dd = document.createElement('dd');
    dd.className = 'warn';
    dd.textContent = note;
    dl.append(document.createElement('dt'), dd);
  }
}

function startPolling() {
  if (app.pollTimer) return;
  const tick = async () => {
    app.pollTimer = null;
    if (!app.session) return;
    const id = app.session.session_id;
    let view;
    let requestId = '';
    try {
      ({ data: view, requestId } = await api('GET', `/api/v1/video/sessions/${encodeURIComponent(id)}`));
    } catch (e) {
      if (app.sessionView) renderStatus(app.sessionView, `last check failed: ${e.message}${e.requestId ? ` (request id ${e.requestId})` : ''}`);
      app.pollTimer = setTimeout(tick, POLL_MS);
      return;
    }
    if (!app.session || app.session.session_id !== id) return;
    app.sessionView = { session_id: id, ...view };
    renderStatus(app.sessionView);
    renderTimeToCounselor();
    if (TERMINAL.has(view.status)) {
      await sessionOver(view, requestId);
      return;
    }
    app.pollTimer = setTimeout(tick, POLL_MS);
  };
  app.pollTimer = setTimeout(tick, 0);
}

async function sessionOver(view, requestId) {
  await cleanupRoom();
  setBusy(false);
  $('end-button').disabled = true;
  if (view.status === 'ended') {
    const parts = [];
    if (view.duration_seconds !== undefined) parts.push(`duration ${view.duration_seconds} s`);
    if (view.end_reason) parts.push(`reason ${view.end_reason}`);
    setState('ended', 'Session ended.', `${parts.join(', ')}. Pick a counselor to start another one.`);
  } else {
    setState('failed', `Session failed${view.end_reason ? ` (${view.end_reason})` : ''}.`,
      `session ${app.session ? app.session.session_id : ''}`, requestId);
  }
}

async function endSession() {
  if (!app.session || app.endRequested) return;
  const id = app.session.session_id;
  app.endRequested = true;
  $('end-button').disabled = true;
  setState('ending', 'Ending the session…');
  try {
    await api('POST', `/api/v1/video/sessions/${encodeURIComponent(id)}/end`);
  } catch (e) {
    app.endRequested = false;
    $('end-button').disabled = false;
    showError('failed', 'Could not end the session', e);
    return;
  }
  await cleanupRoom();
  setState('ending', 'Session ending…', 'Waiting for it to be recorded as ended.');
  startPolling();
}

async function cleanupRoom() {
  if (app.frameTimer) {
    clearInterval(app.frameTimer);
    app.frameTimer = null;
  }
  const room = app.room;
  app.room = null;
  if (room) {
    try {
      await room.disconnect();
    } catch {
      /* already gone */
    }
  }
  for (const el of $('audio-sink').querySelectorAll('audio')) el.remove();
  stopMic();
  renderParticipants();
}

function stopMic() {
  if (app.micTrack) {
    app.micTrack.stop();
    app.micTrack = null;
  }
}

// ---- boot ----------------------------------------------------------------------------------------

async function boot() {
  $('signin-form').addEventListener('submit', onSignIn);
  $('start-button').addEventListener('click', () => startSession().catch((e) => {
    setBusy(false);
    showError('failed', 'Session failed', e);
  }));
  $('end-button').addEventListener('click', () => endSession());
  $('enable-audio-button').addEventListener('click', async () => {
    if (app.room) await app.room.startAudio();
    $('enable-audio-button').hidden = !app.room || app.room.canPlaybackAudio;
  });
  window.addEventListener('beforeunload', () => {
    if (app.room) app.room.disconnect();
  });
  try {
    const res = await fetch('/config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    app.config = await res.json();
  } catch (e) {
    setState('config-error', `Could not load /config.json from the dev stack: ${e.message}`);
    return;
  }
  $('username').value = app.config.username || '';
  $('password').value = app.config.password || '';
  $('signin-button').disabled = false;
  setState('signed-out', 'Sign in as the local test student (prefilled from the dev stack).');
}

// Exposed for debugging in the browser console.
window.playground = { app, LK };
boot();
