#!/usr/bin/env python3
"""Generate golden webhook vectors for every hookrelay provider adapter.

Each request is signed the way the provider's documentation does it, with
Python's hmac, hashlib, base64 and json modules, at fixed times, so the Go
tests check the adapters against the real thing rather than against
themselves.

Run from anywhere:  python3 providers/testdata/gen_vectors.py
It writes providers/testdata/vectors.json next to this script, and one seed
per vector for the FuzzVerify of the vector's provider package, under
providers/<package>/testdata/fuzz/FuzzVerify/ (the Go tests of each
package load the vectors of its provider from vectors.json).

Vector fields:
  name, provider, options     config keys as in hookrelay.yaml (tolerance as
                              a Go duration string)
  wrong_options               the same source with other secrets / value
  headers, body (base64), now (unix seconds)
  path                        videovector: "raw" (wire body is canonical) or
                              "canonical" (only json.dumps(json.loads(body),
                              sort_keys=True) verifies)
  expect                      type, subject, dedupe_key (adapter default, ""
                              if none), accept_dedupe_key (after the body-
                              hash fallback), delivery_id, time (RFC 3339,
                              "" for none)
  tamper                      what the Go tests may break: signature header
                              and kind, headers covered by the signature,
                              required headers, timestamp header with the
                              signing time and window, whether the body is
                              signed, the webhook-id header
"""

import base64
import hashlib
import hmac
import json
import os
import sys
from datetime import datetime, timezone

T0 = 1717243200  # 2024-06-01T12:00:00Z
NOW = T0 + 42  # the receive time of every vector


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def rfc3339_unix(n) -> str:
    return datetime.fromtimestamp(n, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_iso(s: str) -> str:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()


def body_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def canonical(body: bytes) -> bytes:
    """What VideoVector signs: json.dumps(payload, sort_keys=True)."""
    return json.dumps(json.loads(body), sort_keys=True).encode()


VECTORS = []


def add(name, provider, options, wrong_options, headers, body, expect, tamper, path="raw", now=NOW):
    expect = dict(expect)
    expect.setdefault("delivery_id", "")
    expect.setdefault("time", "")
    expect["accept_dedupe_key"] = expect["dedupe_key"] or body_key(body)
    VECTORS.append({
        "name": name,
        "provider": provider,
        "options": options,
        "wrong_options": wrong_options,
        "headers": headers,
        "body": b64(body),
        "now": now,
        "path": path,
        "expect": expect,
        "tamper": tamper,
    })


def tamper(sig_header, sig_kind, signed=(), required=(), ts=None, body_signed=True, webhook_id_header=""):
    return {
        "signature": {"header": sig_header, "kind": sig_kind},
        "signed_headers": list(signed),
        "required_headers": list(required),
        "timestamp": ts,
        "body_signed": body_signed,
        "webhook_id_header": webhook_id_header,
    }


# --- sketchpen -------------------------------------------------------------
# Docs: signature = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(),
# hashlib.sha256).hexdigest(); header "sha256=" + signature; the secret is
# used as given, whsec_ prefix included.

def sketchpen(name, secrets, signer, payload, ts_header, ts_unix, body=None, upper=False):
    body = body if body is not None else json.dumps(payload).encode()
    sig = hmac_sha256(signer.encode(), ts_header.encode() + b"." + body).hex()
    if upper:
        sig = sig.upper()
    headers = {
        "Content-Type": "application/json",
        "X-Sketchpen-Timestamp": ts_header,
        "X-Sketchpen-Signature": "sha256=" + sig,
    }
    add("sketchpen/" + name, "sketchpen", {"secrets": secrets}, {"secrets": ["whsec_not_the_sketchpen_secret"]},
        headers, body,
        {
            "type": payload.get("event", ""),
            "subject": payload.get("video_id", ""),
            "dedupe_key": "%s:%s:%s" % (payload["event"], payload["video_id"], payload["created_at"])
            if all(k in payload for k in ("event", "video_id", "created_at")) else "",
            "time": rfc3339_unix(payload["created_at"]) if "created_at" in payload else "",
        },
        tamper("X-Sketchpen-Signature", "hex-prefixed",
               signed=["X-Sketchpen-Timestamp"],
               required=["X-Sketchpen-Signature", "X-Sketchpen-Timestamp"],
               ts={"header": "X-Sketchpen-Timestamp", "signed_at": ts_unix, "window_s": 300}))


SK1 = "whsec_c2tldGNocGVuLXByaW1hcnk"
SK_OLD, SK_NEW = "whsec_sketchpen_old_2023", "whsec_sketchpen_new_2024"
sketchpen("unix", [SK1], SK1,
          {"event": "video.completed", "video_id": "vid_123", "created_at": T0 - 5,
           "data": {"duration": 12.5, "url": "https://cdn.example/vid_123.mp4"}},
          str(T0), T0)
sketchpen("rfc3339-timestamp", [SK1], SK1,
          {"event": "video.failed", "video_id": "vid_456", "created_at": T0 - 60, "error": "render timeout"},
          "2024-06-01T12:00:00Z", T0)
sketchpen("rotation-second-secret", [SK_OLD, SK_NEW], SK_NEW,
          {"event": "video.created", "video_id": "vid_789", "created_at": T0 - 1},
          str(T0 + 10), T0 + 10)
sketchpen("compact-utf8-uppercase-hex", [SK1], SK1,
          {"event": "video.completed", "video_id": "vid_ü", "created_at": T0, "title": "Crème brûlée 🎬"},
          str(T0), T0, body=json.dumps({"event": "video.completed", "video_id": "vid_ü", "created_at": T0,
                                        "title": "Crème brûlée 🎬"}, separators=(",", ":"),
                                       ensure_ascii=False).encode(), upper=True)
sketchpen("missing-video-id", [SK1], SK1,
          {"event": "video.deleted", "created_at": T0}, str(T0 - 100), T0 - 100)


# --- videopilot ------------------------------------------------------------
# Docs: hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest(),
# header "sha256=" + hex. No timestamp header.

def videopilot(name, secrets, signer, payload, body=None):
    body = body if body is not None else json.dumps(payload).encode()
    sig = hmac_sha256(signer.encode(), body).hex()
    data = payload.get("data", {})
    job = data.get("render_job_id") or data.get("video_id")
    ok = payload.get("event") and job and payload.get("timestamp")
    add("videopilot/" + name, "videopilot", {"secrets": secrets}, {"secrets": ["not-the-videopilot-secret"]},
        {"Content-Type": "application/json", "X-VideoPilot-Signature": "sha256=" + sig}, body,
        {
            "type": payload.get("event", ""),
            "subject": data.get("video_id", ""),
            "dedupe_key": "%s:%s:%s" % (payload["event"], job, payload["timestamp"]) if ok else "",
            "time": rfc3339_iso(payload["timestamp"]) if "timestamp" in payload else "",
        },
        tamper("X-VideoPilot-Signature", "hex-prefixed", required=["X-VideoPilot-Signature"]))


VP1 = "vp_live_6f1c2d9e8b7a"
videopilot("render-job", [VP1], VP1,
           {"event": "render.completed", "timestamp": "2024-06-01T11:59:30.123Z",
            "data": {"video_id": "v_42", "render_job_id": "rj_9001", "status": "done"}})
videopilot("video-only", [VP1], VP1,
           {"event": "video.uploaded", "timestamp": "2024-06-01T11:58:00+00:00",
            "data": {"video_id": "v_43"}})
videopilot("rotation-second-secret", ["vp_old_secret", "vp_new_secret"], "vp_new_secret",
           {"event": "render.failed", "timestamp": "2024-06-01T12:00:00Z",
            "data": {"video_id": "v_44", "render_job_id": "rj_9002", "reason": "codec"}},
           body=b'{\n  "event": "render.failed",\n  "timestamp": "2024-06-01T12:00:00Z",\n'
                b'  "data": {"video_id": "v_44", "render_job_id": "rj_9002", "reason": "codec"}\n}\n')
videopilot("no-timestamp", [VP1], VP1, {"event": "render.started", "data": {"video_id": "v_45"}})


# --- videovector -----------------------------------------------------------
# Docs: the worker signs json.dumps(payload, sort_keys=True).encode() with
# hmac sha256 and sends "sha256=" + hexdigest in X-Webhook-Signature; it sends
# the same bytes as the body. Canonical-path vectors carry a re-encoded body.

def videovector(name, secrets, signer, wire, path, event_type="", delivery_id="", webhook_id="", opt_webhook_id=""):
    payload = json.loads(wire)
    signed = canonical(wire)
    if path == "raw":
        assert wire == signed, name
    else:
        assert wire != signed, name
    sig = hmac_sha256(signer.encode(), signed).hex()
    headers = {"Content-Type": "application/json", "X-Webhook-Signature": "sha256=" + sig}
    if event_type:
        headers["X-Event-Type"] = event_type
    if delivery_id:
        headers["X-Delivery-ID"] = delivery_id
    if webhook_id:
        headers["X-Webhook-ID"] = webhook_id
    options = {"secrets": secrets}
    wrong = {"secrets": ["not-the-videovector-secret"]}
    if opt_webhook_id:
        options["webhook_id"] = opt_webhook_id
        wrong["webhook_id"] = opt_webhook_id
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    subject = data.get("id") or payload.get("id", "")
    add("videovector/" + name, "videovector", options, wrong, headers, wire,
        {
            "type": event_type or payload.get("event", ""),
            "subject": str(subject),
            "dedupe_key": delivery_id or str(payload.get("id", "")),
            "delivery_id": delivery_id,
            "time": rfc3339_iso(payload["created_at"]) if "created_at" in payload else "",
        },
        tamper("X-Webhook-Signature", "hex-prefixed", required=["X-Webhook-Signature"],
               webhook_id_header="X-Webhook-ID" if opt_webhook_id else ""),
        path=path)


VV1 = "vv_sk_3b9f0e2a71c4"
VV_OLD, VV_NEW = "vv_sk_rotated_old", "vv_sk_rotated_new"
p1 = {"id": "evt_001", "event": "video.generated", "created_at": "2024-06-01T11:59:58Z",
      "data": {"id": "vid_a1", "duration_s": 30, "resolution": "1080p", "tags": ["promo", "summer"],
               "score": 0.87, "published": False, "thumbnail": None}}
canon1 = json.dumps(p1, sort_keys=True).encode()
videovector("raw-canonical", [VV1], VV1, canon1, "raw", event_type="video.generated", delivery_id="dlv_001")
videovector("raw-canonical-test-event", [VV1], VV1,
            json.dumps({"id": "evt_test_1", "event": "test.ping", "created_at": "2024-06-01T12:00:00Z",
                        "data": {}}, sort_keys=True).encode(), "raw")
videovector("raw-canonical-escaped-unicode", [VV1], VV1,
            json.dumps({"id": "evt_002", "event": "video.generated", "created_at": "2024-06-01T12:00:01Z",
                        "data": {"id": "vid_é", "title": "Café \u2603 \U0001F3AC\ttab\x7f"}},
                       sort_keys=True).encode(), "raw", event_type="video.generated", delivery_id="dlv_002")
videovector("canonical-compact", [VV1], VV1, json.dumps(p1, separators=(",", ":")).encode(), "canonical",
            event_type="video.generated", delivery_id="dlv_003")
videovector("canonical-reordered-keys", [VV1], VV1,
            json.dumps({"data": p1["data"], "event": p1["event"], "id": p1["id"], "created_at": p1["created_at"]}).encode(),
            "canonical", delivery_id="dlv_004")
videovector("canonical-raw-utf8", [VV1], VV1,
            json.dumps({"id": "evt_005", "event": "video.generated", "created_at": "2024-06-01T12:00:02Z",
                        "data": {"id": "vid_ø", "title": "Ünïcødé – 日本語 🎬"}},
                       sort_keys=True, ensure_ascii=False).encode(), "canonical",
            event_type="video.generated", delivery_id="dlv_005")
videovector("canonical-pretty", [VV1], VV1, json.dumps(p1, indent=2).encode() + b"\n", "canonical",
            event_type="video.generated", delivery_id="dlv_006")
videovector("canonical-numbers", [VV1], VV1,
            b'{"id":"evt_007","event":"metrics.updated","created_at":"2024-06-01T12:00:03Z",'
            b'"data":{"id":"vid_n","floats":[1.0,1e-05,1E16,-0.0,0.1,1.5e300,2.5E-7,100.0,3.14159],'
            b'"ints":[-0,12345678901234567890123,-9007199254740993,0,10],"empty":{"a":[],"b":{}},'
            b'"nested":{"z":{"y":{"x":[true,false,null]}}}}}', "canonical", delivery_id="dlv_007")
videovector("canonical-escapes", [VV1], VV1,
            b'{"id":"evt_008","event":"video.generated","created_at":"2024-06-01T12:00:04Z",'
            b'"data":{"id":"vid_\\u0065sc","s":"quote\\" backslash\\\\ slash\\/ nl\\n cr\\r tab\\t bs\\b ff\\f '
            b'ctl\\u0001 del\x7f \xf0\x9f\x98\x80 \\ud83d\\ude00 \xe2\x80\xa8"}}', "canonical",
            event_type="video.generated", delivery_id="dlv_008")
videovector("canonical-duplicate-keys", [VV1], VV1,
            b'{"id":"evt_dup_first","event":"video.generated","created_at":"2024-06-01T12:00:05Z",'
            b'"data":{"id":"vid_d","id":"vid_d2"},"id":"evt_dup_last"}', "canonical")
videovector("canonical-non-bmp-keys", [VV1], VV1,
            json.dumps({"id": "evt_010", "event": "video.generated", "created_at": "2024-06-01T12:00:06Z",
                        "data": {"id": "vid_k", "\U0001F600": 1, "\uffff": 2, "\u00e9": 3, "Z": 4, "a": 5}},
                       ensure_ascii=False, separators=(",", ":")).encode(), "canonical")
videovector("rotation-webhook-id", [VV_OLD, VV_NEW], VV_NEW, canon1, "raw",
            event_type="video.generated", delivery_id="dlv_011", webhook_id="wh_main", opt_webhook_id="wh_main")
videovector("rotation-webhook-id-canonical", [VV_OLD, VV_NEW], VV_NEW,
            json.dumps(p1, separators=(",", ":")).encode(), "canonical",
            event_type="video.generated", delivery_id="dlv_012", webhook_id="wh_main", opt_webhook_id="wh_main")


# --- shortkit --------------------------------------------------------------
# Webhooks: hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), sha256),
# "sha256=" + hexdigest; unix seconds; 300 s. Older API ("body-only"): plain
# hexdigest of the raw body, optional ISO 8601 timestamp. Callbacks
# ("callback-header"): no signature, a configured header and value.

SH1 = "whsec_shortkit_live_8d2f"
SH_OLD, SH_NEW = "whsec_shortkit_old", "whsec_shortkit_new"


def shortkit_expect(payload, delivery_id, body):
    data = payload.get("data", {})
    return {
        "type": payload.get("event", ""),
        "subject": data.get("contentId", ""),
        "dedupe_key": delivery_id,
        "delivery_id": delivery_id,
        "time": rfc3339_iso(payload["timestamp"]) if "timestamp" in payload else "",
    }


def shortkit_ts(name, secrets, signer, payload, ts_unix, delivery_id):
    body = json.dumps(payload).encode()
    ts = str(ts_unix)
    sig = hmac_sha256(signer.encode(), ts.encode() + b"." + body).hex()
    headers = {"Content-Type": "application/json", "X-Shortform-Timestamp": ts,
               "X-Shortform-Signature": "sha256=" + sig}
    if delivery_id:
        headers["X-Shortform-Delivery-ID"] = delivery_id
    add("shortkit/" + name, "shortkit", {"secrets": secrets}, {"secrets": ["whsec_not_shortkit"]},
        headers, body, shortkit_expect(payload, delivery_id, body),
        tamper("X-Shortform-Signature", "hex-prefixed", signed=["X-Shortform-Timestamp"],
               required=["X-Shortform-Signature", "X-Shortform-Timestamp"],
               ts={"header": "X-Shortform-Timestamp", "signed_at": ts_unix, "window_s": 300}))


def shortkit_body_only(name, secrets, signer, payload, ts_header, ts_unix, prefix="", upper=False, tolerance=""):
    body = json.dumps(payload, separators=(",", ":")).encode()
    sig = hmac_sha256(signer.encode(), body).hex()
    if upper:
        sig = sig.upper()
    headers = {"Content-Type": "application/json", "X-Shortform-Signature": prefix + sig}
    if ts_header:
        headers["X-Shortform-Timestamp"] = ts_header
    options = {"secrets": secrets, "scheme": "body-only"}
    window = 300
    if tolerance:
        options["tolerance"] = tolerance
        window = 600
    add("shortkit/" + name, "shortkit", options, {"secrets": ["whsec_not_shortkit"], "scheme": "body-only"},
        headers, body, shortkit_expect(payload, "", body),
        tamper("X-Shortform-Signature", "hex-optional-prefix", required=["X-Shortform-Signature"],
               ts={"header": "X-Shortform-Timestamp", "signed_at": ts_unix, "window_s": window} if ts_header else None))


def shortkit_callback(name, header, value, payload):
    body = json.dumps(payload).encode()
    options = {"scheme": "callback-header", "header": header, "value": value}
    add("shortkit/" + name, "shortkit", options,
        {"scheme": "callback-header", "header": header, "value": value + "-rotated"},
        {"Content-Type": "application/json", header: value}, body, shortkit_expect(payload, "", body),
        tamper(header, "value", required=[header], body_signed=False))


content = {"contentId": "cnt_77", "title": "Launch teaser", "status": "ready"}
shortkit_ts("timestamp", [SH1], SH1,
            {"event": "content.published", "timestamp": "2024-06-01T11:59:50Z", "data": content},
            T0, "dlv_sk_1")
shortkit_ts("timestamp-rotation", [SH_OLD, SH_NEW], SH_NEW,
            {"event": "content.updated", "timestamp": "2024-06-01T11:59:51Z", "data": content},
            T0 + 30, "dlv_sk_2")
shortkit_ts("timestamp-no-delivery-id", [SH1], SH1,
            {"event": "content.deleted", "timestamp": "2024-06-01T11:59:52Z", "data": {"contentId": "cnt_78"}},
            T0 - 200, "")
shortkit_body_only("body-only-iso", [SH1], SH1,
                   {"event": "content.published", "timestamp": "2024-06-01T11:59:53.250Z", "data": content},
                   "2024-06-01T11:59:53.000Z", T0 - 7)
shortkit_body_only("body-only-iso-offset-prefixed", [SH1], SH1,
                   {"event": "content.published", "timestamp": "2024-06-01T13:59:54+02:00", "data": content},
                   "2024-06-01T13:59:54+02:00", T0 - 6, prefix="sha256=")
shortkit_body_only("body-only-unix-uppercase-rotation", [SH_OLD, SH_NEW], SH_NEW,
                   {"event": "content.updated", "timestamp": "2024-06-01T11:55:00Z", "data": content},
                   str(T0 - 500), T0 - 500, upper=True, tolerance="10m")
shortkit_body_only("body-only-no-timestamp", [SH1], SH1,
                   {"event": "content.published", "data": content}, "", None)
shortkit_callback("callback-imported", "X-Callback-Token", "cb_tok_5f3e9a",
                  {"event": "content.imported", "timestamp": "2024-06-01T11:59:59Z",
                   "data": {"contentId": "cnt_90", "sourceUrl": "https://example.com/a.mp4"}})
shortkit_callback("callback-import-failed", "Authorization", "Bearer cb-2d7c41",
                  {"event": "content.import_failed", "timestamp": "2024-06-01T12:00:00Z",
                   "data": {"contentId": "cnt_91", "error": "unsupported codec"}})


# --- standard-webhooks -----------------------------------------------------
# Spec: signed content f"{msg_id}.{timestamp}.{body}", key base64-decoded from
# after "whsec_", signature "v1," + base64(hmac-sha256), space-separated list.

def sw_key(secret: str) -> bytes:
    return base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)


def sw_sig(secret: str, msg_id: str, ts: str, body: bytes) -> str:
    return "v1," + b64(hmac_sha256(sw_key(secret), msg_id.encode() + b"." + ts.encode() + b"." + body))


def standard(name, secrets, signer, payload, msg_id, ts_unix, extra_before=(), extra_after=(), tolerance=""):
    body = json.dumps(payload, separators=(",", ":")).encode()
    ts = str(ts_unix)
    sig = " ".join(list(extra_before) + [sw_sig(signer, msg_id, ts, body)] + list(extra_after))
    options = {"secrets": secrets}
    window = 300
    if tolerance:
        options["tolerance"] = tolerance
        window = 60
    data = payload.get("data", {})
    add("standard-webhooks/" + name, "standard-webhooks", options,
        {"secrets": ["whsec_" + b64(b"not the standard webhooks key!!")]},
        {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig},
        body,
        {
            "type": payload.get("type") or payload.get("event", ""),
            "subject": data.get("id", ""),
            "dedupe_key": msg_id,
            "delivery_id": msg_id,
            "time": rfc3339_iso(payload["timestamp"]) if "timestamp" in payload else "",
        },
        tamper("webhook-signature", "v1", signed=["webhook-id", "webhook-timestamp"],
               required=["webhook-id", "webhook-timestamp", "webhook-signature"],
               ts={"header": "webhook-timestamp", "signed_at": ts_unix, "window_s": window}))


SW1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the example secret of the Standard Webhooks docs
SW_OLD = "whsec_" + b64(bytes(range(32)))
SW_NEW = "whsec_" + b64(hashlib.sha256(b"hookrelay rotation").digest())
SW_BARE = b64(b"a secret without the whsec prefix")
standard("basic", [SW1], SW1,
         {"type": "video.ready", "timestamp": "2024-06-01T11:59:57Z", "data": {"id": "vid_sw1", "size": 1024}},
         "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", T0)
standard("rotation-second-secret", [SW_OLD, SW_NEW], SW_NEW,
         {"type": "video.deleted", "timestamp": "2024-06-01T11:59:58Z", "data": {"id": "vid_sw2"}},
         "msg_rot_1", T0 - 100)
standard("other-versions-ignored", [SW1], SW1,
         {"type": "video.ready", "data": {"id": "vid_sw3"}},
         "msg_versions", T0 + 100,
         extra_before=["v1a,ZmFrZSBlZDI1NTE5IHNpZ25hdHVyZQ==", "v2,c29tZXRoaW5nIGVsc2U="],
         extra_after=["v1," + b64(hmac_sha256(b"some other key", b"x"))])
standard("bare-secret-event-fallback-tolerance", [SW_BARE], SW_BARE,
         {"event": "render.done", "timestamp": "2024-06-01T12:00:00Z", "data": {"id": "vid_sw4"}},
         "msg_bare", T0 + 20, tolerance="1m")


# --- generic hmac ----------------------------------------------------------

def generic(name, options, signer, payload, headers_in, expect, tamper_, ts_header_value=None, now=NOW):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    headers.update(headers_in)
    template = options.get("template", "{body}")
    ts = ts_header_value or ""
    msg = template.replace("{timestamp}", ts)
    for h, v in headers.items():
        msg = msg.replace("{header:%s}" % h, v)
    pre, _, post = msg.partition("{body}")
    assert "{" not in pre + post, msg
    mac = hmac_sha256(signer.encode(), pre.encode() + body + post.encode())
    enc = b64(mac) if options.get("encoding") == "base64" else mac.hex()
    headers[options["signature_header"]] = options.get("prefix", "") + enc
    if options.get("timestamp_header"):
        headers[options["timestamp_header"]] = ts
    wrong = dict(options)
    wrong["secrets"] = ["not-the-generic-secret"]
    exp = {"dedupe_key": ""}
    exp.update(expect)
    add("hmac/" + name, "hmac", options, wrong, headers, body, exp, tamper_, now=now)


GH = "ghsecret_4b1d"
generic("github-style", {"secrets": [GH], "signature_header": "X-Hub-Signature-256", "prefix": "sha256="}, GH,
        {"type": "push", "data": {"id": "repo_1"}, "ref": "refs/heads/main"}, {},
        {"type": "push", "subject": "repo_1"},
        tamper("X-Hub-Signature-256", "hex-prefixed", required=["X-Hub-Signature-256"]))
generic("timestamp-template-rotation",
        {"secrets": ["gen_old", "gen_new"], "signature_header": "X-Signature", "timestamp_header": "X-Timestamp",
         "template": "{timestamp}.{body}"}, "gen_new",
        {"type": "order.paid", "data": {"id": "ord_5"}}, {},
        {"type": "order.paid", "subject": "ord_5"},
        tamper("X-Signature", "hex", signed=["X-Timestamp"], required=["X-Signature", "X-Timestamp"],
               ts={"header": "X-Timestamp", "signed_at": T0, "window_s": 300}),
        ts_header_value=str(T0))
generic("base64-iso-timestamp-custom-fields",
        {"secrets": [GH], "signature_header": "X-Signature-B64", "prefix": "v1=", "encoding": "base64",
         "timestamp_header": "X-Sent-At", "template": "{timestamp}:{body}", "tolerance": "2m",
         "event_type_field": "meta.kind", "subject_field": "object.uid"}, GH,
        {"meta": {"kind": "asset.ready"}, "object": {"uid": "as_9"}, "type": "ignored"}, {},
        {"type": "asset.ready", "subject": "as_9"},
        tamper("X-Signature-B64", "base64", signed=["X-Sent-At"], required=["X-Signature-B64", "X-Sent-At"],
               ts={"header": "X-Sent-At", "signed_at": T0 - 30, "window_s": 120}),
        ts_header_value="2024-06-01T11:59:30Z")
generic("header-placeholder",
        {"secrets": [GH], "signature_header": "X-Sig", "timestamp_header": "X-Ts", "prefix": "sha256=",
         "template": "{header:X-Request-Id}.{timestamp}.{body}"}, GH,
        {"type": "job.done", "data": {"id": "job_3"}}, {"X-Request-Id": "req_abc"},
        {"type": "job.done", "subject": "job_3"},
        tamper("X-Sig", "hex-prefixed", signed=["X-Request-Id", "X-Ts"], required=["X-Sig", "X-Ts", "X-Request-Id"],
               ts={"header": "X-Ts", "signed_at": T0 + 5, "window_s": 300}),
        ts_header_value=str(T0 + 5))


def go_quote(b: bytes) -> str:
    """A Go interpreted string literal for arbitrary bytes."""
    out = []
    for c in b:
        if c in (0x22, 0x5C):
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return '"' + "".join(out) + '"'


def fuzz_roles(v):
    """The headers FuzzVerify (providers/providertest/fuzz.go) replaces:
    the signature, the timestamp, and a third one it must also find."""
    t = v["tamper"]
    sig = t["signature"]["header"]
    ts = t["timestamp"]["header"] if t["timestamp"] else ""
    third = "X-Fuzz-Extra"
    for h in t["signed_headers"] + t["required_headers"] + [t["webhook_id_header"]]:
        if h and h not in (sig, ts):
            third = h
            break
    return sig, ts, third


# The Go package of each provider: its tests, FuzzVerify among them, sit in
# providers/<package>.
PACKAGES = {
    "hmac": "generichmac",
    "shortkit": "shortkit",
    "sketchpen": "sketchpen",
    "standard-webhooks": "standardwebhooks",
    "videopilot": "videopilot",
    "videovector": "videovector",
}


def write_fuzz_seeds(root):
    """One seed per vector for the FuzzVerify of its provider's package, in
    go test's corpus format. The seed's index is the vector's among those of
    its provider, in file order (FuzzVerify picks the vector by it)."""
    dirs = {}
    for provider, pkg in PACKAGES.items():
        d = os.path.join(root, "..", pkg, "testdata", "fuzz", "FuzzVerify")
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("vector-"):
                os.remove(os.path.join(d, f))
        dirs[provider] = d
    index = {}
    for v in VECTORS:
        i = index.get(v["provider"], 0)
        index[v["provider"]] = i + 1
        vals = [v["headers"].get(h, "") if h else "" for h in fuzz_roles(v)]
        lines = ["go test fuzz v1", "uint16(%d)" % i]
        lines += ["string(%s)" % go_quote(x.encode()) for x in vals]
        lines.append("[]byte(%s)" % go_quote(base64.b64decode(v["body"])))
        with open(os.path.join(dirs[v["provider"]], "vector-" + v["name"].replace("/", "-")), "w") as f:
            f.write("\n".join(lines) + "\n")


def main():
    root = os.path.dirname(os.path.abspath(__file__))
    write_fuzz_seeds(root)
    out = os.path.join(root, "vectors.json")
    doc = {
        "generator": "providers/testdata/gen_vectors.py",
        "python": sys.version.split()[0],
        "vectors": VECTORS,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print("wrote %d vectors to %s" % (len(VECTORS), out))


if __name__ == "__main__":
    main()
