// Microphone access for the room page: the permission request, the device list, and level readers that
// drive the input meter and the voice visualizers. Plain Web APIs only; no LiveKit here.

/** A message and next step for a failed getUserMedia, by the DOMException's name. */
export function describeMicrophoneError(error) {
  const name = (error && error.name) || '';
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return 'Microphone access was blocked. Allow the microphone for this site in your browser\'s address bar or site settings, then press "Turn on microphone" again.';
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError') {
    return 'No microphone was found. Plug one in (or pair a headset), then press "Turn on microphone" again.';
  }
  if (name === 'NotReadableError' || name === 'AbortError') {
    return 'Your microphone is busy or failed to start. Close other apps that use it, then press "Turn on microphone" again.';
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return 'This browser cannot use a microphone here. Open MockFlow over HTTPS in a current Chrome, Edge, Firefox or Safari.';
  }
  return 'The microphone could not be started. Check that it is connected, then press "Turn on microphone" again.';
}

/** Ask for the microphone (the browser shows its permission prompt the first time). */
export async function openMicrophone(deviceId) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error('getUserMedia is unavailable'), { name: 'NotSupportedError' });
  }
  const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) audio.deviceId = { exact: deviceId };
  return navigator.mediaDevices.getUserMedia({ audio });
}

/** The audio inputs the browser offers, once permission is granted (labels are empty before). */
export async function listMicrophones() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((device) => device.kind === 'audioinput' && device.deviceId);
}

/** Stop every track of a stream, releasing the device. */
export function stopStream(stream) {
  if (stream) stream.getTracks().forEach((track) => track.stop());
}

/**
 * Measure a MediaStreamTrack: `level()` is 0..1 loudness, `bands(n)` is n 0..1 frequency band
 * strengths for a visualizer. `close()` disconnects it from the audio graph.
 */
export function createLevelReader(audioContext, mediaStreamTrack) {
  const source = audioContext.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 512;
  analyser.smoothingTimeConstant = 0.6;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const spectrum = new Uint8Array(analyser.frequencyBinCount);
  // Speech lives below ~4 kHz; the bands cover that part of the spectrum.
  const speechBins = Math.max(8, Math.floor((4000 / (audioContext.sampleRate / 2)) * analyser.frequencyBinCount));
  return {
    track: mediaStreamTrack,
    level() {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      return Math.min(1, Math.sqrt(sum / samples.length) * 5);
    },
    bands(count) {
      analyser.getByteFrequencyData(spectrum);
      const width = Math.max(1, Math.floor(speechBins / count));
      const result = [];
      for (let band = 0; band < count; band += 1) {
        let sum = 0;
        for (let bin = band * width; bin < (band + 1) * width; bin += 1) sum += spectrum[bin];
        result.push(sum / width / 255);
      }
      return result;
    },
    close() {
      source.disconnect();
    },
  };
}
