// The interview room page: the microphone check, joining, status polling and the buttons. The room
// protocol itself (what each SDK event means) is in room_protocol.js; this file is the DOM around it.
import { AGENT_STATE_LABELS, createRoomController, formatDuration } from './room_protocol.js';
import {
  createLevelReader, describeMicrophoneError, listMicrophones, openMicrophone, stopStream,
} from './microphone.js';

const STATUS_POLL_MS = 3000;
const BAR_COUNT = 5;
const PHASE_MESSAGES = {
  connecting: 'Connecting to the interview room…',
  waiting: 'Interviewer joining…',
  live: 'You are live with the interviewer.',
  reconnecting: 'Connection lost. Reconnecting…',
  disconnected: 'Not connected to the interview room.',
};
const SERVER_STATUS_MESSAGES = {
  created: '',
  starting: 'The interviewer is getting ready.',
  live: 'The interview is running. Join to continue.',
};

function byId(id) {
  return document.getElementById(id);
}

function isHidden(element) {
  return !element || element === document.body || Boolean(element.closest('[hidden]'));
}

/** The page's DOM, as the view the room controller renders through. */
function createDomView(elements, audio) {
  const captionsBySegment = new Map();
  let agentTrack = null;

  function focusIfLost(target) {
    if (isHidden(document.activeElement) && target && !isHidden(target)) target.focus();
  }

  function setActions(prefix, actions) {
    for (const action of ['rejoin', 'microphone', 'settings', 'new-interview', 'feedback']) {
      const control = byId(`${prefix}-${action}`);
      if (control) control.hidden = !actions.includes(action);
    }
  }

  function drawStage(index) {
    elements.stageItems.forEach((item, position) => {
      item.classList.toggle('stage-done', position < index);
      if (position === index) item.setAttribute('aria-current', 'step');
      else item.removeAttribute('aria-current');
    });
  }

  return {
    showPhase(phase) {
      const ended = phase === 'ended';
      elements.prejoin.hidden = phase !== 'prejoin';
      elements.live.hidden = phase === 'prejoin' || ended;
      elements.connectionStatus.textContent = PHASE_MESSAGES[phase] || '';
      elements.connectionStatus.dataset.phase = phase;
      elements.skip.disabled = phase !== 'live';
      elements.mute.disabled = !['live', 'waiting', 'reconnecting'].includes(phase);
      focusIfLost(elements.connectionStatus);
    },
    showServerStatus(status) {
      elements.serverStatus.textContent = SERVER_STATUS_MESSAGES[status] || '';
    },
    showProblem({ title, message, actions }) {
      elements.problemTitle.textContent = title;
      elements.problemMessage.textContent = message;
      setActions('problem', actions);
      elements.problem.hidden = false;
      focusIfLost(elements.problem.querySelector('button:not([hidden]), a:not([hidden])'));
    },
    clearProblem() {
      elements.problem.hidden = true;
    },
    showEnded({ title, message, actions }, { refresh = false } = {}) {
      elements.endedTitle.textContent = title;
      elements.endedMessage.textContent = message;
      setActions('ended', [...actions, 'feedback', 'new-interview']);
      elements.ended.hidden = false;
      if (!refresh) elements.endedTitle.focus();
    },
    showAgentState(agentState) {
      elements.agentState.textContent = AGENT_STATE_LABELS[agentState] || 'Listening';
      elements.agentVoice.dataset.state = agentState;
    },
    showCandidateSpeaking(speaking) {
      if (elements.mute.getAttribute('aria-pressed') === 'true') return;
      elements.candidateState.textContent = speaking ? 'Speaking' : 'Quiet';
      elements.candidateVoice.dataset.state = speaking ? 'speaking' : 'quiet';
    },
    showMuted(muted) {
      elements.mute.setAttribute('aria-pressed', String(muted));
      elements.candidateState.textContent = muted ? 'Muted' : 'Quiet';
      elements.candidateVoice.dataset.state = muted ? 'muted' : 'quiet';
    },
    showStage({ key, title, index, count }) {
      let position = elements.stageItems.findIndex((item) => item.dataset.stageKey === key);
      if (position < 0 && index !== null && index < elements.stageItems.length) position = index;
      drawStage(position);
      const item = elements.stageItems[position];
      const name = title || (item && item.textContent.trim()) || key;
      const total = count || elements.stageItems.length;
      elements.announcer.textContent = position < 0 ? `Stage: ${name}` : `Stage ${position + 1} of ${total}: ${name}`;
    },
    showCountdown(milliseconds) {
      if (milliseconds === null) {
        elements.countdown.textContent = '–';
      } else {
        elements.countdown.textContent = milliseconds > 0 ? formatDuration(milliseconds) : '0:00, wrapping up';
      }
    },
    showElapsed(milliseconds) {
      elements.elapsed.textContent = milliseconds === null ? '–' : formatDuration(milliseconds);
    },
    showInterimCaption(speaker, text) {
      (speaker === 'candidate' ? elements.interimCandidate : elements.interimAgent).textContent = text;
    },
    beginCaption(segmentId, speaker) {
      if (segmentId && captionsBySegment.has(segmentId)) return;
      // Hidden until final: interim words stay out of the log that screen readers follow.
      const line = document.createElement('p');
      line.className = `caption caption-${speaker}`;
      line.hidden = true;
      const who = document.createElement('span');
      who.className = 'caption-speaker';
      who.textContent = speaker === 'candidate' ? 'You: ' : 'Interviewer: ';
      line.append(who, document.createElement('span'));
      elements.captionsLog.append(line);
      if (segmentId) captionsBySegment.set(segmentId, line);
    },
    writeFinalCaption(segmentId, speaker, text) {
      const log = elements.captionsLog;
      const stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      if (!segmentId || !captionsBySegment.has(segmentId)) this.beginCaption(segmentId, speaker);
      const line = segmentId ? captionsBySegment.get(segmentId) : log.lastElementChild;
      line.lastChild.textContent = text;
      line.hidden = false;
      (speaker === 'candidate' ? elements.interimCandidate : elements.interimAgent).textContent = '';
      if (stickToBottom) log.scrollTop = log.scrollHeight;
    },
    attachAgentAudio(track) {
      if (agentTrack === track) return;
      agentTrack = track;
      elements.agentAudio.append(track.attach());
      audio.setAgentTrack(track.mediaStreamTrack);
    },
    detachAgentAudio(track) {
      track.detach().forEach((element) => element.remove());
      if (agentTrack === track) {
        agentTrack = null;
        audio.setAgentTrack(null);
      }
    },
    attachLocalAudio(track) {
      audio.setCandidateTrack(track ? track.mediaStreamTrack : null);
    },
    showAudioBlocked(blocked) {
      elements.audioBlocked.hidden = !blocked;
    },
  };
}

/** The Web Audio side: one AudioContext, the level meter of the check, and the two visualizers. */
function createAudioMeters(elements) {
  let context = null;
  const readers = { check: null, agent: null, candidate: null };
  let running = false;

  function ensureContext() {
    if (!context) context = new AudioContext();
    if (context.state === 'suspended') context.resume().catch(() => {});
    return context;
  }

  function setReader(name, mediaStreamTrack) {
    if (readers[name]) readers[name].close();
    readers[name] = mediaStreamTrack ? createLevelReader(ensureContext(), mediaStreamTrack) : null;
    start();
  }

  function drawBars(bars, reader, silent) {
    const levels = reader && !silent ? reader.bands(BAR_COUNT) : [];
    bars.forEach((bar, index) => {
      bar.style.transform = `scaleY(${(0.08 + 0.92 * (levels[index] || 0)).toFixed(3)})`;
    });
  }

  function frame() {
    if (readers.check) elements.micLevel.value = readers.check.level();
    if (!elements.live.hidden) {
      drawBars(elements.agentBars, readers.agent, false);
      drawBars(elements.candidateBars, readers.candidate, elements.mute.getAttribute('aria-pressed') === 'true');
    }
    if (readers.check || readers.agent || readers.candidate) requestAnimationFrame(frame);
    else running = false;
  }

  function start() {
    if (running) return;
    running = true;
    requestAnimationFrame(frame);
  }

  return {
    ensureContext,
    setCheckTrack: (track) => setReader('check', track),
    setAgentTrack: (track) => setReader('agent', track),
    setCandidateTrack: (track) => setReader('candidate', track),
    stopAll() {
      Object.keys(readers).forEach((name) => setReader(name, null));
    },
  };
}

function collectElements() {
  const live = byId('live');
  return {
    prejoin: byId('prejoin'),
    live,
    ended: byId('ended'),
    endedTitle: byId('ended-title'),
    endedMessage: byId('ended-message'),
    problem: byId('problem'),
    problemTitle: byId('problem-title'),
    problemMessage: byId('problem-message'),
    announcer: byId('stage-announcer'),
    connectionStatus: byId('connection-status'),
    serverStatus: byId('server-status'),
    audioBlocked: byId('audio-blocked'),
    micAllow: byId('mic-allow'),
    micMessage: byId('mic-message'),
    micCheck: byId('mic-check'),
    micSelect: byId('mic-select'),
    micLevel: byId('mic-level'),
    join: byId('join'),
    stageItems: Array.from(byId('stage-list').querySelectorAll('li')),
    countdown: byId('stage-countdown'),
    elapsed: byId('elapsed'),
    agentVoice: byId('voice-agent'),
    candidateVoice: byId('voice-candidate'),
    agentBars: Array.from(live.querySelectorAll('#voice-agent .voice-bars span')),
    candidateBars: Array.from(live.querySelectorAll('#voice-candidate .voice-bars span')),
    agentState: byId('agent-state'),
    candidateState: byId('candidate-state'),
    mute: byId('mute'),
    skip: byId('skip'),
    end: byId('end'),
    controlStatus: byId('control-status'),
    liveMicrophone: byId('live-microphone'),
    liveMicSelect: byId('live-mic-select'),
    liveMicUse: byId('live-mic-use'),
    captionsLog: byId('captions-log'),
    interimAgent: byId('interim-agent'),
    interimCandidate: byId('interim-candidate'),
    agentAudio: byId('agent-audio'),
    endDialog: byId('end-dialog'),
    endConfirm: byId('end-confirm'),
    endCancel: byId('end-cancel'),
  };
}

function fillDeviceSelect(select, devices, selectedId) {
  select.replaceChildren(...devices.map((device, index) => {
    const option = document.createElement('option');
    option.value = device.deviceId;
    option.textContent = device.label || `Microphone ${index + 1}`;
    option.selected = device.deviceId === selectedId;
    return option;
  }));
}

function start() {
  const data = JSON.parse(byId('room-data').textContent);
  const elements = collectElements();
  const sdk = globalThis.LivekitClient;
  const audio = createAudioMeters(elements);
  const view = createDomView(elements, audio);
  if (!sdk) {
    view.showProblem({ title: 'The room could not load', message: 'Reload the page to try again.', actions: [] });
    return;
  }
  const room = new sdk.Room({ adaptiveStream: false, dynacast: false });
  const controller = createRoomController({ room, sdk, view });
  controller.bind();

  let checkStream = null;
  let deviceId = '';
  let joining = false;

  async function refreshDevices() {
    const devices = await listMicrophones();
    if (!deviceId && devices.length) deviceId = devices[0].deviceId;
    fillDeviceSelect(elements.micSelect, devices, deviceId);
    fillDeviceSelect(elements.liveMicSelect, devices, deviceId);
  }

  async function checkMicrophone() {
    audio.ensureContext();
    elements.micMessage.textContent = 'Waiting for microphone permission…';
    stopStream(checkStream);
    checkStream = null;
    try {
      checkStream = await openMicrophone(deviceId);
    } catch (error) {
      elements.micMessage.textContent = describeMicrophoneError(error);
      elements.micMessage.classList.add('error');
      elements.join.disabled = true;
      return;
    }
    const track = checkStream.getAudioTracks()[0];
    deviceId = track.getSettings().deviceId || deviceId;
    await refreshDevices();
    elements.micMessage.classList.remove('error');
    elements.micMessage.textContent = 'Microphone on. Say something and watch the level move.';
    elements.micCheck.hidden = false;
    elements.micAllow.textContent = 'Restart microphone check';
    elements.join.disabled = false;
    track.addEventListener('ended', () => {
      elements.micMessage.textContent = 'The microphone stopped. Plug it back in or choose another one.';
      audio.setCheckTrack(null);
    });
    audio.setCheckTrack(track);
  }

  function stopMicrophoneCheck() {
    stopStream(checkStream);
    checkStream = null;
    audio.setCheckTrack(null);
  }

  async function requestToken() {
    let response;
    try {
      response = await fetch(data.urls.token, { cache: 'no-store', headers: { Accept: 'application/json' } });
    } catch {
      controller.reportProblem({
        title: 'MockFlow could not be reached',
        message: 'Check your internet connection, then rejoin.',
        actions: ['rejoin'],
      });
      return null;
    }
    const body = await response.json().catch(() => ({}));
    if (response.ok) return body;
    if (response.status === 409) {
      await pollStatus();
      controller.reportProblem({ title: 'This interview has ended', message: body.error || '', actions: ['feedback'] });
    } else if (response.status === 400) {
      controller.reportProblem({
        title: 'Your LiveKit settings are missing',
        message: body.error || 'Add your LiveKit URL, API key and secret in Settings.',
        actions: ['settings'],
      });
    } else {
      controller.reportProblem({
        title: 'Could not get a room pass',
        message: body.error || 'Please wait a moment, then rejoin.',
        actions: ['rejoin'],
      });
    }
    return null;
  }

  async function join() {
    if (joining || controller.ended) return;
    joining = true;
    elements.join.disabled = true;
    byId('problem-rejoin').disabled = true;
    // Still inside the click: this unlocks audio playback for the interviewer's voice.
    audio.ensureContext();
    room.startAudio().catch(() => {});
    const grant = await requestToken();
    if (grant && await controller.connect({ url: grant.url, token: grant.token, deviceId })) {
      stopMicrophoneCheck();
    }
    joining = false;
    elements.join.disabled = !checkStream;
    byId('problem-rejoin').disabled = false;
  }

  async function pollStatus() {
    try {
      const response = await fetch(data.urls.status, { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (response.ok) controller.applyServerStatus(await response.json());
    } catch {
      // A missed poll is retried; the room's own events report a dropped network.
    }
  }

  // Polls until the interview ends, then once more for the reason the server stored.
  function schedulePoll(afterEnd = false) {
    setTimeout(async () => {
      await pollStatus();
      if (!afterEnd) schedulePoll(controller.ended);
    }, STATUS_POLL_MS);
  }

  elements.micAllow.addEventListener('click', checkMicrophone);
  elements.micSelect.addEventListener('change', () => {
    deviceId = elements.micSelect.value;
    checkMicrophone();
  });
  elements.join.addEventListener('click', join);
  byId('problem-rejoin').addEventListener('click', join);
  byId('problem-microphone').addEventListener('click', async () => {
    elements.liveMicrophone.open = true;
    await refreshDevices().catch(() => {});
    elements.liveMicSelect.focus();
  });
  byId('start-audio').addEventListener('click', () => {
    audio.ensureContext();
    room.startAudio().then(() => view.showAudioBlocked(!room.canPlaybackAudio)).catch(() => {});
  });
  elements.liveMicrophone.addEventListener('toggle', () => {
    if (elements.liveMicrophone.open) refreshDevices().catch(() => {});
  });
  elements.liveMicUse.addEventListener('click', async () => {
    deviceId = elements.liveMicSelect.value;
    if (await controller.useMicrophone(deviceId)) elements.controlStatus.textContent = 'Microphone changed.';
  });
  elements.mute.addEventListener('click', async () => {
    const muted = elements.mute.getAttribute('aria-pressed') !== 'true';
    elements.mute.disabled = true;
    try {
      await controller.setMuted(muted);
      elements.controlStatus.textContent = muted ? 'Microphone muted.' : 'Microphone on.';
    } catch {
      elements.controlStatus.textContent = 'The microphone could not be changed. Try again.';
    }
    elements.mute.disabled = false;
  });
  elements.skip.addEventListener('click', async () => {
    elements.skip.disabled = true;
    const result = await controller.skipStage();
    elements.controlStatus.textContent = result.message;
    elements.skip.disabled = controller.phase !== 'live';
  });
  elements.end.addEventListener('click', () => {
    elements.endDialog.showModal();
    elements.endCancel.focus();
  });
  elements.endCancel.addEventListener('click', () => elements.endDialog.close());
  elements.endConfirm.addEventListener('click', async () => {
    elements.endDialog.close();
    elements.controlStatus.textContent = 'Ending the interview…';
    await controller.endInterview();
  });

  const ticker = setInterval(() => {
    if (controller.ended) {
      clearInterval(ticker);
      audio.stopAll();
      stopMicrophoneCheck();
      return;
    }
    controller.tick();
  }, 1000);

  controller.applyServerStatus(data);
  schedulePoll();
}

start();
