"""A small stand-in for agent_worker.py, for the worker-manager lifecycle tests.

It speaks the same process protocol (a `ready` line on stdout, then the job spec on stdin) and sets
statuses in the store like the real agent, then behaves as told on its command line:
  complete   go live, save a turn, finish `completed`, exit 0
  crash      go live, save a turn, die without a final status
  hang       go live, ignore SIGTERM, keep beating until killed
  run        go live, keep beating; on SIGTERM finish `interrupted` and exit 0
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import store  # noqa: E402

HEARTBEAT_INTERVAL_S = 0.2


def main(behaviour: str) -> int:
    print(json.dumps({"event": "ready"}), flush=True)
    spec = json.loads(sys.stdin.read())
    interview_id = spec["interview_id"]
    app_store = store.Store(spec["database_url"])
    with app_store.session() as db:
        store.set_interview_status(db, interview_id, "live")
        store.append_turn(db, interview_id, speaker="interviewer", stage="greeting",
                          text="Hello, welcome.", start_s=0.0, end_s=1.0)
    print(json.dumps({"event": "joined"}), flush=True)
    if behaviour == "complete":
        with app_store.session() as db:
            store.set_interview_status(db, interview_id, "completed")
        return 0
    if behaviour == "crash":
        os._exit(3)
    stop = threading.Event()
    if behaviour == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(HEARTBEAT_INTERVAL_S):
        with app_store.session() as db:
            store.touch_heartbeat(db, interview_id)
    with app_store.session() as db:
        store.set_interview_status(db, interview_id, "interrupted", "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
