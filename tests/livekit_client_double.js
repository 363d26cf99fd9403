// A test double of livekit-client's UMD bundle: the same `LivekitClient` global, with the part of the
// API the room page uses. The browser tests serve it in place of static/vendor/livekit-client.umd.js
// and drive it through `window.__livekitDouble`, playing the LiveKit server and the agent.
(() => {
  class Emitter {
    constructor() { this.listeners = new Map(); }
    on(event, listener) {
      if (!this.listeners.has(event)) this.listeners.set(event, []);
      this.listeners.get(event).push(listener);
      return this;
    }
    off(event, listener) {
      this.listeners.set(event, (this.listeners.get(event) || []).filter((item) => item !== listener));
      return this;
    }
    emit(event, ...args) {
      (this.listeners.get(event) || []).slice().forEach((listener) => listener(...args));
      return true;
    }
  }

  const RoomEvent = {
    Connected: 'connected', Reconnecting: 'reconnecting', Reconnected: 'reconnected', Disconnected: 'disconnected',
    ConnectionStateChanged: 'connectionStateChanged', ParticipantConnected: 'participantConnected',
    ParticipantDisconnected: 'participantDisconnected', ParticipantAttributesChanged: 'participantAttributesChanged',
    TrackSubscribed: 'trackSubscribed', TrackUnsubscribed: 'trackUnsubscribed', LocalTrackPublished: 'localTrackPublished',
    ActiveSpeakersChanged: 'activeSpeakersChanged', AudioPlaybackStatusChanged: 'audioPlaybackChanged',
    MediaDevicesError: 'mediaDevicesError',
  };
  const TrackEvent = { Ended: 'ended', Restarted: 'restarted' };
  const DisconnectReason = { CLIENT_INITIATED: 1, DUPLICATE_IDENTITY: 2, ROOM_DELETED: 5, SIGNAL_CLOSE: 9 };
  const ConnectionErrorReason = { NotAllowed: 0, ServerUnreachable: 1, Cancelled: 3 };
  const ParticipantKind = { STANDARD: 0, AGENT: 4 };

  class ConnectionError extends Error {
    constructor(message, reason, status) {
      super(message);
      this.name = 'ConnectionError';
      this.reason = reason;
      this.status = status;
    }
  }

  const control = {
    room: null,
    connectCalls: [],
    rpcCalls: [],
    microphoneCalls: [],
    restartCalls: [],
    deviceSwitches: [],
    startAudioCalls: 0,
    disconnectCalls: 0,
    connectFailure: null,
    rpcFailure: null,
    agent: null,
  };

  function identityFromToken(token) {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(payload)).sub || 'candidate';
    } catch {
      return 'candidate';
    }
  }

  async function microphoneTrack(deviceId) {
    const audio = deviceId ? { deviceId } : true;
    const stream = await navigator.mediaDevices.getUserMedia({ audio });
    return stream.getAudioTracks()[0];
  }

  class LocalAudioTrack extends Emitter {
    constructor(mediaStreamTrack) {
      super();
      this.kind = 'audio';
      this.mediaStreamTrack = mediaStreamTrack;
      this.isMuted = false;
    }
    async restartTrack(options) {
      control.restartCalls.push(options || {});
      this.mediaStreamTrack = await microphoneTrack(options && options.deviceId);
      this.emit(TrackEvent.Restarted, this);
    }
  }

  class RemoteAudioTrack {
    constructor(mediaStreamTrack) {
      this.kind = 'audio';
      this.mediaStreamTrack = mediaStreamTrack;
      this.elements = [];
    }
    attach() {
      const element = document.createElement('audio');
      element.srcObject = new MediaStream([this.mediaStreamTrack]);
      element.autoplay = true;
      this.elements.push(element);
      return element;
    }
    detach() {
      const detached = this.elements;
      this.elements = [];
      return detached;
    }
  }

  class LocalParticipant extends Emitter {
    constructor(room) {
      super();
      this.room = room;
      this.identity = '';
      this.microphoneTrack = null;
    }
    async setMicrophoneEnabled(enabled, options) {
      control.microphoneCalls.push({ enabled, options: options || null });
      if (!enabled) {
        if (this.microphoneTrack) this.microphoneTrack.isMuted = true;
        return undefined;
      }
      if (this.microphoneTrack) {
        this.microphoneTrack.isMuted = false;
        return { track: this.microphoneTrack };
      }
      this.microphoneTrack = new LocalAudioTrack(await microphoneTrack(options && options.deviceId));
      const publication = { track: this.microphoneTrack, kind: 'audio' };
      this.room.emit(RoomEvent.LocalTrackPublished, publication, this);
      return publication;
    }
    async performRpc(params) {
      control.rpcCalls.push({ ...params });
      if (control.rpcFailure) throw Object.assign(new Error(control.rpcFailure), { code: 1500 });
      return '{"ok":true}';
    }
  }

  class Room extends Emitter {
    constructor(options) {
      super();
      this.options = options;
      this.remoteParticipants = new Map();
      this.localParticipant = new LocalParticipant(this);
      this.textStreamHandlers = new Map();
      this.canPlaybackAudio = true;
      this.state = 'disconnected';
      control.room = this;
    }
    registerTextStreamHandler(topic, handler) {
      this.textStreamHandlers.set(topic, handler);
    }
    async connect(url, token) {
      control.connectCalls.push({ url, token });
      if (control.connectFailure) {
        const { message, reason, status } = control.connectFailure;
        throw new ConnectionError(message, reason, status);
      }
      this.localParticipant.identity = identityFromToken(token);
      this.localParticipant.microphoneTrack = null;
      this.state = 'connected';
      this.emit(RoomEvent.Connected);
    }
    async disconnect() {
      control.disconnectCalls += 1;
      if (this.state === 'disconnected') return;
      this.state = 'disconnected';
      this.remoteParticipants.clear();
      this.emit(RoomEvent.Disconnected, DisconnectReason.CLIENT_INITIATED);
    }
    async startAudio() {
      control.startAudioCalls += 1;
    }
    async switchActiveDevice(kind, deviceId) {
      control.deviceSwitches.push({ kind, deviceId });
      return true;
    }
  }

  // A tone standing in for the interviewer's voice, so the visualizer has something to show.
  function toneTrack() {
    const context = new AudioContext();
    const oscillator = context.createOscillator();
    const destination = context.createMediaStreamDestination();
    oscillator.frequency.value = 440;
    oscillator.connect(destination);
    oscillator.start();
    return destination.stream.getAudioTracks()[0];
  }

  function textReader(chunks, attributes, trailer) {
    const info = { id: `stream-${Math.random().toString(16).slice(2)}`, topic: 'lk.transcription', attributes: { ...attributes } };
    return {
      info,
      async *[Symbol.asyncIterator]() {
        for (const chunk of chunks) {
          await new Promise((resolve) => setTimeout(resolve, 30));
          yield chunk;
        }
        Object.assign(info.attributes, trailer || {});
      },
    };
  }

  Object.assign(control, {
    agentJoins(attributes = {}, identity = 'interviewer-0123456789ab') {
      const room = control.room;
      const agent = {
        identity, kind: ParticipantKind.AGENT, isAgent: true, attributes: { ...attributes }, audioTrackPublications: new Map(),
      };
      control.agent = agent;
      room.remoteParticipants.set(identity, agent);
      room.emit(RoomEvent.ParticipantConnected, agent);
      const track = new RemoteAudioTrack(toneTrack());
      agent.audioTrackPublications.set('TR_agent', { track });
      room.emit(RoomEvent.TrackSubscribed, track, { track }, agent);
      return identity;
    },
    setAgentAttributes(changed) {
      Object.assign(control.agent.attributes, changed);
      control.room.emit(RoomEvent.ParticipantAttributesChanged, changed, control.agent);
    },
    agentLeaves() {
      control.room.remoteParticipants.delete(control.agent.identity);
      control.room.emit(RoomEvent.ParticipantDisconnected, control.agent);
    },
    // The candidate's words: one stream per interim or final result, final flag in the header.
    candidateSays(segmentId, text, final) {
      const reader = textReader([text], { 'lk.segment_id': segmentId, 'lk.transcription_final': String(final) });
      control.room.textStreamHandlers.get('lk.transcription')(reader, { identity: control.room.localParticipant.identity });
    },
    // The interviewer's words: one delta stream per segment, final flag in the trailer.
    agentSays(segmentId, chunks) {
      const reader = textReader(chunks, { 'lk.segment_id': segmentId }, { 'lk.transcription_final': 'true' });
      control.room.textStreamHandlers.get('lk.transcription')(reader, { identity: control.agent.identity });
    },
    speakersChanged(candidateSpeaking) {
      const room = control.room;
      room.emit(RoomEvent.ActiveSpeakersChanged, candidateSpeaking ? [room.localParticipant] : []);
    },
    reconnecting() {
      control.room.emit(RoomEvent.Reconnecting);
    },
    reconnected() {
      control.room.emit(RoomEvent.Reconnected);
    },
    dropConnection(reason = DisconnectReason.SIGNAL_CLOSE) {
      control.room.state = 'disconnected';
      control.room.remoteParticipants.clear();
      control.room.emit(RoomEvent.Disconnected, reason);
    },
    unplugMicrophone() {
      const track = control.room.localParticipant.microphoneTrack;
      track.mediaStreamTrack.stop();
      track.emit(TrackEvent.Ended, track);
    },
    blockAudio(blocked) {
      control.room.canPlaybackAudio = !blocked;
      control.room.emit(RoomEvent.AudioPlaybackStatusChanged, !blocked);
    },
  });

  globalThis.__livekitDouble = control;
  globalThis.LivekitClient = {
    Room, RoomEvent, TrackEvent, DisconnectReason, ConnectionError, ConnectionErrorReason, ParticipantKind,
  };
})();
