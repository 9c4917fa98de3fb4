#!/usr/bin/env python3
"""Generate golden vectors for shortkit's per-request callbacks
(scheme callback-token).

shortkit's current guide: callbacks are POSTed to the callbackUrl given
with the request, as JSON, unsigned; it recommends a secret token in the
URL. The callback events are content.imported, content.import_failed and
tiktok_import.completed (camelCase fields, ISO 8601 "timestamp"), and the
organization-level Live VOD webhook's content.playback_id_updated
(snake_case fields, unix-seconds "timestamp"). Callbacks carry no delivery
id, so hookrelay's dedupe key is the SHA-256 of the body.

Run from anywhere:  python3 providers/shortkit/testdata/gen_callbacks.py
It writes callbacks.json next to this script.

Vector fields: name, secrets (the source's), query (the callback URL's
query string as shortkit would send it), body (base64), now (unix
seconds), expect {type, subject, time (RFC 3339 UTC, "" for none),
dedupe_key}.
"""

import base64
import hashlib
import json
import os
import urllib.parse
from datetime import datetime, timezone

NOW = 1780000000  # 2026-05-28T20:26:40Z
TOKEN = "cbtok_3f9a5c7e2b4d6f8a1c0e"
OLD, NEW = "cbtok_rotated_old_11aa", "cbtok_rotated_new_22bb"


def rfc3339(v):
    if isinstance(v, (int, float)):
        return datetime.fromtimestamp(v, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    t = datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond // 1000:03d}" if t.microsecond else "") + "Z"


vectors = []


def callback(name, secrets, token, payload, subject, extra_query=None):
    body = json.dumps(payload).encode()
    q = [("token", token)] + (extra_query or [])
    vectors.append({
        "name": name,
        "secrets": secrets,
        "query": urllib.parse.urlencode(q),
        "body": base64.b64encode(body).decode(),
        "now": NOW,
        "expect": {
            "type": payload["event"],
            "subject": subject,
            "time": rfc3339(payload["timestamp"]) if "timestamp" in payload else "",
            "dedupe_key": "sha256:" + hashlib.sha256(body).hexdigest(),
        },
    })


callback("imported", [TOKEN], TOKEN,
         {"event": "content.imported", "timestamp": "2026-05-28T20:26:31.512Z",
          "data": {"contentId": "cnt_8c1f", "sourceUrl": "https://cdn.example.com/in/launch.mp4", "status": "ready"}},
         "cnt_8c1f")
callback("import-failed", [TOKEN], TOKEN,
         {"event": "content.import_failed", "timestamp": "2026-05-28T20:26:35Z",
          "data": {"contentId": "cnt_8c20", "error": {"code": "unsupported_codec", "message": "HEVC 10-bit is not supported"}}},
         "cnt_8c20")
callback("tiktok-import-completed", [TOKEN], TOKEN,
         {"event": "tiktok_import.completed", "timestamp": "2026-05-28T20:26:38+02:00",
          "data": {"contentId": "cnt_8c21", "tiktokUrl": "https://www.tiktok.com/@brand/video/7370000000000000000"}},
         "cnt_8c21")
callback("playback-id-updated", [TOKEN], TOKEN,
         {"event": "content.playback_id_updated", "timestamp": NOW - 5,
          "data": {"content_id": "cnt_8c22", "playback_id": "pb_55e0", "previous_playback_id": "pb_54ff"}},
         "cnt_8c22")
callback("rotation-new-token", [OLD, NEW], NEW,
         {"event": "content.imported", "timestamp": "2026-05-28T20:26:39Z", "data": {"contentId": "cnt_8c23"}},
         "cnt_8c23")
callback("other-query-params", [TOKEN], TOKEN,
         {"event": "content.imported", "timestamp": "2026-05-28T20:26:40Z", "data": {"contentId": "cnt_8c24", "title": "Démo"}},
         "cnt_8c24", extra_query=[("requestId", "req_77"), ("source", "api")])

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callbacks.json")
with open(out, "w") as f:
    json.dump(vectors, f, indent=2, ensure_ascii=False)
    f.write("\n")
print(f"wrote {len(vectors)} vectors to {out}")
