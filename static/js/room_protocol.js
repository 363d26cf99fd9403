// The interview room's protocol: what the agent publishes (attributes, captions), what the page asks of
// it (RPC), and how every SDK event becomes something the candidate sees. A controller is bound to one
// Room-like emitter and one view; nothing here is global, and nothing here touches the DOM or the network
// except through the room and view it is given.

// Every name shared with the agent lives here, to be reconciled with docs/room-protocol.md. The
// failure reason is `mockflow.failure_reason`, as agent_worker.py publishes it (set for `failed` only).
export const PROTOCOL = Object.freeze({
  attributes: Object.freeze({
    stage: 'mockflow.stage',
    stageTitle: 'mockflow.stage_title',
    stageIndex: 'mockflow.stage_index',
    stageCount: 'mockflow.stage_count',
    stageDeadlineMs: 'mockflow.stage_deadline_ms',
    status: 'mockflow.status',
    reason: 'mockflow.failure_reason',
    agentState: 'lk.agent.state',
  }),
  transcription: Object.freeze({
    topic: 'lk.transcription',
    final: 'lk.transcription_final',
    segmentId: 'lk.segment_id',
  }),
  rpc: Object.freeze({
    endInterview: 'end_interview',
    skipStage: 'skip_stage',
    payload: '{}',
    timeoutMs: 8000,
  }),
  agentIdentityPrefix: 'interviewer-',
  activeStatuses: Object.freeze(['created', 'starting', 'live']),
  finalStatuses: Object.freeze(['completed', 'interrupted', 'failed']),
  // The watchdog's reason when an interview runs past its maximum length.
  timeLimitPattern: /time limit/i,
});

// Participant kinds in livekit-client (ParticipantInfo_Kind); AGENT is 4.
const AGENT_KIND = 4;
const CONNECTION_ERROR = Object.freeze({ notAllowed: 0, cancelled: 3, leaveRequest: 4 });
const DISCONNECT = Object.freeze({
  clientInitiated: 1, duplicateIdentity: 2, participantRemoved: 4, roomDeleted: 5, roomClosed: 10,
});

export const AGENT_STATE_LABELS = Object.freeze({
  initializing: 'Getting ready',
  listening: 'Listening',
  thinking: 'Thinking',
  speaking: 'Speaking',
});

/** True for the interviewer: an agent participant, or one whose identity our agent uses. */
export function isAgentParticipant(participant) {
  if (!participant) return false;
  return participant.isAgent === true || participant.kind === AGENT_KIND
    || String(participant.identity || '').startsWith(PROTOCOL.agentIdentityPrefix);
}

function integerOrNull(value) {
  if (value === undefined || value === null || value === '') return null;
  const number = Number(value);
  return Number.isFinite(number) ? Math.trunc(number) : null;
}

/** The interview state carried by the agent's participant attributes; absent ones are null. */
export function readAgentAttributes(attributes) {
  const names = PROTOCOL.attributes;
  const source = attributes || {};
  return {
    stageKey: source[names.stage] || null,
    stageTitle: source[names.stageTitle] || null,
    stageIndex: integerOrNull(source[names.stageIndex]),
    stageCount: integerOrNull(source[names.stageCount]),
    deadlineMs: integerOrNull(source[names.stageDeadlineMs]),
    status: source[names.status] || null,
    reason: source[names.reason] || '',
    agentState: source[names.agentState] || null,
  };
}

/** "m:ss" (or "h:mm:ss") for a duration; negative durations show as 0:00. */
export function formatDuration(milliseconds) {
  const total = Math.max(0, Math.floor(milliseconds / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

function asSentence(text) {
  const trimmed = String(text || '').trim();
  if (!trimmed) return '';
  return trimmed[0].toUpperCase() + trimmed.slice(1) + (/[.!?]$/.test(trimmed) ? '' : '.');
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** A plain message and next step for a failed `room.connect()`. */
export function describeConnectError(error, url) {
  const host = hostOf(url);
  const reason = error && error.reason;
  const status = error && error.status;
  const text = String((error && error.message) || '');
  if (reason === CONNECTION_ERROR.notAllowed && /expired/i.test(text)) {
    return {
      title: 'Your access to the room expired',
      message: 'The room pass for this interview expired. Rejoin to get a fresh one.',
      actions: ['rejoin'],
    };
  }
  if (reason === CONNECTION_ERROR.notAllowed && (status === 401 || status === 403)) {
    return {
      title: 'LiveKit refused your keys',
      message: `The LiveKit server at ${host} did not accept your API key or secret. Check Settings, then rejoin.`,
      actions: ['settings', 'rejoin'],
    };
  }
  return {
    title: 'LiveKit could not be reached',
    message: `We could not connect to the LiveKit server at ${host}. Check the LiveKit URL and keys in Settings, then rejoin.`,
    actions: ['settings', 'rejoin'],
  };
}

/** True when the connect error only means that we cancelled the attempt ourselves. */
export function isCancelledConnect(error) {
  return Boolean(error) && error.reason === CONNECTION_ERROR.cancelled;
}

/** How the interview ended, as the ended panel shows it, from a final status and its reason. */
export function describeEnding(status, reason, { wasLive = false, endedByCandidate = false } = {}) {
  const saved = 'Your transcript so far is saved.';
  if (PROTOCOL.timeLimitPattern.test(reason || '')) {
    return { title: 'Time is up', message: `The interview reached its time limit. ${saved}`, actions: ['feedback'] };
  }
  if (status === 'failed') {
    return {
      title: wasLive ? 'The interviewer stopped' : 'The interviewer could not start',
      message: `${asSentence(reason) || 'The interviewer ran into a problem.'} Check your keys in Settings, then start a new interview.`,
      actions: ['settings', 'new-interview', 'feedback'],
    };
  }
  if (status === 'interrupted') {
    const cause = asSentence(reason);
    return {
      title: 'The interview was interrupted',
      message: /saved/i.test(cause) ? cause : `${cause} ${saved}`.trim(),
      actions: ['feedback', 'new-interview'],
    };
  }
  if (endedByCandidate) {
    return { title: 'You ended the interview', message: saved, actions: ['feedback'] };
  }
  return { title: 'The interview is complete', message: 'Well done. Your transcript and feedback are next.', actions: ['feedback'] };
}

/**
 * Bind the interview protocol to `room` (a livekit-client Room, or a double with the same events and
 * methods) and render through `view`; `sdk` supplies the event names and `now` the clock (epoch ms).
 */
export function createRoomController({ room, sdk, view, now = () => Date.now() }) {
  const RoomEvent = sdk.RoomEvent;
  const TrackEvent = sdk.TrackEvent;
  const state = {
    phase: 'prejoin',
    connected: false,
    reconnecting: false,
    ended: false,
    endingByCandidate: false,
    agent: null,
    status: null,
    reason: '',
    wasLive: false,
    stageKey: null,
    deadlineMs: null,
    startedAtMs: null,
    micTrack: null,
    problem: null,
  };

  function setPhase(phase) {
    if (state.phase === phase) return;
    state.phase = phase;
    view.showPhase(phase);
  }

  function showProblem(problem) {
    state.problem = problem;
    view.showProblem(problem);
  }

  function clearProblem() {
    if (state.problem) {
      state.problem = null;
      view.clearProblem();
    }
  }

  function finish(ending) {
    if (state.ended) return;
    state.ended = true;
    clearProblem();
    setPhase('ended');
    view.showEnded(ending);
    if (state.connected) {
      state.connected = false;
      room.disconnect();
    }
  }

  function finishWithStatus(status, reason) {
    finish(describeEnding(status, reason, { wasLive: state.wasLive, endedByCandidate: state.endingByCandidate }));
  }

  function refreshPhase() {
    if (state.ended) return;
    if (state.reconnecting) return setPhase('reconnecting');
    if (!state.connected) return;
    const live = state.agent && (state.status === 'live' || (!state.status && agentStateOf(state.agent)));
    if (live) {
      if (!state.wasLive) {
        state.wasLive = true;
        if (state.startedAtMs === null) state.startedAtMs = now();
        tick();
      }
      setPhase('live');
    } else {
      setPhase('waiting');
    }
  }

  function agentStateOf(participant) {
    return readAgentAttributes(participant && participant.attributes).agentState;
  }

  function applyStatus(status, reason) {
    if (!status || state.ended) return;
    state.status = status;
    if (reason) state.reason = reason;
    if (PROTOCOL.finalStatuses.includes(status)) {
      finishWithStatus(status, state.reason);
      return;
    }
    refreshPhase();
  }

  function applyAgentAttributes(participant) {
    const attributes = readAgentAttributes(participant.attributes);
    if (attributes.agentState) view.showAgentState(attributes.agentState);
    if (attributes.stageKey && attributes.stageKey !== state.stageKey) {
      state.stageKey = attributes.stageKey;
      view.showStage({
        key: attributes.stageKey,
        title: attributes.stageTitle,
        index: attributes.stageIndex,
        count: attributes.stageCount,
      });
    }
    if (attributes.deadlineMs !== state.deadlineMs) {
      state.deadlineMs = attributes.deadlineMs;
      tick();
    }
    if (attributes.status) {
      applyStatus(attributes.status, attributes.reason);
    } else {
      refreshPhase();
    }
  }

  function adoptAgent(participant) {
    state.agent = participant;
    applyAgentAttributes(participant);
    participant.audioTrackPublications?.forEach((publication) => {
      if (publication.track) view.attachAgentAudio(publication.track);
    });
  }

  function findAgent() {
    for (const participant of room.remoteParticipants.values()) {
      if (isAgentParticipant(participant)) return participant;
    }
    return null;
  }

  async function readCaption(reader, participantInfo) {
    const attributes = () => (reader.info && reader.info.attributes) || {};
    // The agent publishes both sides; the candidate's own words carry the candidate's identity.
    const speaker = participantInfo && participantInfo.identity === room.localParticipant.identity ? 'candidate' : 'agent';
    const segmentId = attributes()[PROTOCOL.transcription.segmentId] || (reader.info && reader.info.id) || '';
    let text = '';
    // Reserve the caption's place now, so the log keeps the order in which people started speaking.
    if (!state.ended) view.beginCaption(segmentId, speaker);
    try {
      for await (const chunk of reader) {
        text += chunk;
        if (!state.ended) view.showInterimCaption(speaker, text);
      }
    } catch {
      // A stream cut off by a disconnect keeps what arrived.
    }
    const final = attributes()[PROTOCOL.transcription.final] === 'true';
    // An interviewer segment is complete when its stream closes, final or interrupted.
    if ((final || speaker === 'agent') && text.trim()) {
      view.writeFinalCaption(segmentId, speaker, text.trim());
    }
  }

  function watchMicrophone(track) {
    if (!track || state.micTrack === track) return;
    state.micTrack = track;
    view.attachLocalAudio(track);
    track.on(TrackEvent.Ended, () => {
      if (state.ended) return;
      showProblem({
        title: 'Your microphone stopped',
        message: 'Was it unplugged? Plug it back in, or choose another microphone and press "Use this microphone".',
        actions: ['microphone'],
      });
    });
    track.on(TrackEvent.Restarted, () => {
      view.attachLocalAudio(track);
      if (state.problem && state.problem.actions.includes('microphone')) clearProblem();
    });
  }

  const handlers = {
    [RoomEvent.ParticipantConnected]: (participant) => {
      if (isAgentParticipant(participant)) adoptAgent(participant);
    },
    [RoomEvent.ParticipantDisconnected]: (participant) => {
      if (participant !== state.agent && !(state.agent && participant.identity === state.agent.identity)) return;
      state.agent = null;
      if (state.ended) return;
      if (PROTOCOL.finalStatuses.includes(state.status)) return finishWithStatus(state.status, state.reason);
      finish({
        title: 'The interviewer left',
        message: 'The interviewer left the room before the end. Your transcript so far is saved.',
        actions: ['feedback', 'new-interview'],
      });
    },
    [RoomEvent.ParticipantAttributesChanged]: (_changed, participant) => {
      if (isAgentParticipant(participant)) {
        if (!state.agent) state.agent = participant;
        applyAgentAttributes(participant);
      }
    },
    [RoomEvent.TrackSubscribed]: (track, _publication, participant) => {
      if (track.kind === 'audio' && isAgentParticipant(participant)) view.attachAgentAudio(track);
    },
    [RoomEvent.TrackUnsubscribed]: (track) => {
      if (track.kind === 'audio') view.detachAgentAudio(track);
    },
    [RoomEvent.LocalTrackPublished]: (publication) => {
      if (publication.track && publication.track.kind === 'audio') watchMicrophone(publication.track);
    },
    [RoomEvent.ActiveSpeakersChanged]: (speakers) => {
      view.showCandidateSpeaking(speakers.some((speaker) => speaker === room.localParticipant));
    },
    [RoomEvent.AudioPlaybackStatusChanged]: () => {
      view.showAudioBlocked(!room.canPlaybackAudio);
    },
    [RoomEvent.MediaDevicesError]: () => {
      if (state.ended) return;
      showProblem({
        title: 'Your microphone could not be used',
        message: 'Another app may be using it. Choose a microphone and press "Use this microphone".',
        actions: ['microphone'],
      });
    },
    [RoomEvent.Reconnecting]: () => {
      if (state.ended) return;
      state.reconnecting = true;
      refreshPhase();
    },
    [RoomEvent.Reconnected]: () => {
      state.reconnecting = false;
      if (state.problem && state.problem.actions.includes('rejoin')) clearProblem();
      refreshPhase();
    },
    [RoomEvent.Disconnected]: (reason) => {
      const wasConnected = state.connected;
      state.connected = false;
      state.reconnecting = false;
      state.agent = null;
      if (state.ended || !wasConnected) return;
      if (reason === DISCONNECT.roomDeleted || reason === DISCONNECT.roomClosed || reason === DISCONNECT.participantRemoved) {
        finishWithStatus(PROTOCOL.finalStatuses.includes(state.status) ? state.status : 'completed', state.reason);
        return;
      }
      if (reason === DISCONNECT.duplicateIdentity) {
        showProblem({
          title: 'Joined somewhere else',
          message: 'This interview was opened in another tab or device, so this page left the room. Rejoin to continue here.',
          actions: ['rejoin'],
        });
      } else {
        showProblem({
          title: 'The connection dropped',
          message: 'We lost the connection to the interview room. Check your network, then rejoin: the interview is still running.',
          actions: ['rejoin'],
        });
      }
      setPhase('disconnected');
    },
  };

  /** Start listening to the room; call once. */
  function bind() {
    for (const [event, handler] of Object.entries(handlers)) room.on(event, handler);
    room.registerTextStreamHandler(PROTOCOL.transcription.topic, (reader, participantInfo) => {
      readCaption(reader, participantInfo);
    });
  }

  /** Join the room with a fresh token, publish the chosen microphone and start audio playback. */
  async function connect({ url, token, deviceId }) {
    if (state.ended) return false;
    clearProblem();
    setPhase('connecting');
    try {
      await room.connect(url, token);
    } catch (error) {
      if (isCancelledConnect(error) || state.ended) return false;
      showProblem(describeConnectError(error, url));
      setPhase('disconnected');
      return false;
    }
    state.connected = true;
    const agent = findAgent();
    if (agent) adoptAgent(agent);
    refreshPhase();
    try {
      const publication = await room.localParticipant.setMicrophoneEnabled(true, deviceId ? { deviceId } : undefined);
      if (publication && publication.track) watchMicrophone(publication.track);
    } catch {
      showProblem({
        title: 'Your microphone could not be used',
        message: 'Choose a microphone and press "Use this microphone", or check your browser\'s site permissions.',
        actions: ['microphone'],
      });
    }
    view.showAudioBlocked(!room.canPlaybackAudio);
    return true;
  }

  // The agent publishes a reason for `failed` only, and a dropped agent none at all: once the
  // interview has ended, the server's stored reason (time limit, silence, crash) tells the rest.
  function refineEnding(snapshot) {
    const reason = snapshot.failure_reason || '';
    if (state.endingByCandidate || !PROTOCOL.finalStatuses.includes(snapshot.status) || !reason || reason === state.reason) {
      return;
    }
    state.status = snapshot.status;
    state.reason = reason;
    view.showEnded(describeEnding(snapshot.status, reason, { wasLive: state.wasLive }), { refresh: true });
  }

  /** Fold in the status the server reports (GET /api/interviews/<id>). */
  function applyServerStatus(snapshot) {
    if (!snapshot) return;
    if (state.ended) {
      refineEnding(snapshot);
      return;
    }
    if (snapshot.started_at && state.startedAtMs === null) {
      const started = Date.parse(snapshot.started_at);
      if (Number.isFinite(started)) state.startedAtMs = started;
    }
    const status = snapshot.status;
    if (PROTOCOL.finalStatuses.includes(status)) {
      applyStatus(status, snapshot.failure_reason || '');
    } else if (!state.agent || !state.status) {
      // While the agent is in the room its own attributes are the fresher source.
      applyStatus(status, '');
    }
    if (!state.connected && !state.ended) view.showServerStatus(status);
  }

  /** Update the countdown and the elapsed time; call about once a second. */
  function tick() {
    const current = now();
    view.showCountdown(state.deadlineMs === null ? null : state.deadlineMs - current);
    view.showElapsed(state.startedAtMs === null ? null : current - state.startedAtMs);
  }

  function agentIdentity() {
    const agent = state.agent || findAgent();
    return agent ? agent.identity : null;
  }

  async function callAgent(method) {
    const destinationIdentity = agentIdentity();
    if (!destinationIdentity) throw new Error('The interviewer is not in the room.');
    return room.localParticipant.performRpc({
      destinationIdentity, method, payload: PROTOCOL.rpc.payload, responseTimeout: PROTOCOL.rpc.timeoutMs,
    });
  }

  /** Ask the interviewer to move to the next stage; resolves to a message for the candidate. */
  async function skipStage() {
    try {
      await callAgent(PROTOCOL.rpc.skipStage);
      return { ok: true, message: 'Moving on to the next stage.' };
    } catch (error) {
      return { ok: false, message: `Could not skip this stage: ${(error && error.message) || 'no answer'}.` };
    }
  }

  /** End the interview: tell the interviewer, leave the room, and show the way to the feedback. */
  async function endInterview() {
    if (state.ended) return;
    state.endingByCandidate = true;
    if (state.connected) {
      try {
        await callAgent(PROTOCOL.rpc.endInterview);
      } catch {
        // The interviewer may already be gone; leaving the room still ends the candidate's side.
      }
    }
    finishWithStatus('completed', '');
  }

  /** Mute or unmute the microphone; resolves to the new muted state. */
  async function setMuted(muted) {
    await room.localParticipant.setMicrophoneEnabled(!muted);
    view.showMuted(muted);
    return muted;
  }

  /** Use another microphone, also to recover from one that stopped. */
  async function useMicrophone(deviceId) {
    try {
      if (state.micTrack && state.micTrack.mediaStreamTrack && state.micTrack.mediaStreamTrack.readyState === 'ended') {
        await state.micTrack.restartTrack(deviceId ? { deviceId } : undefined);
      } else {
        await room.switchActiveDevice('audioinput', deviceId);
      }
      if (state.problem && state.problem.actions.includes('microphone')) clearProblem();
      view.attachLocalAudio(state.micTrack);
      return true;
    } catch {
      showProblem({
        title: 'That microphone could not be used',
        message: 'Choose another microphone, or check that it is plugged in, then press "Use this microphone".',
        actions: ['microphone'],
      });
      return false;
    }
  }

  /** Reveal the failure the page found before it could join (token refused, keys missing). */
  function reportProblem(problem) {
    if (state.ended) return;
    showProblem(problem);
    if (state.phase === 'connecting') setPhase('disconnected');
  }

  return {
    bind,
    connect,
    applyServerStatus,
    tick,
    skipStage,
    endInterview,
    setMuted,
    useMicrophone,
    reportProblem,
    finishWithStatus,
    get phase() { return state.phase; },
    get ended() { return state.ended; },
  };
}
