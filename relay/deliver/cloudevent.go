package deliver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/hookrelay/hookrelay/relay/storage"
)

// CloudEvent renders the CloudEvents 1.0 structured-mode JSON of a stored
// event: the provider payload goes into data unchanged. A payload that is
// not valid UTF-8 (so not JSON a consumer can read, though a provider may
// sign any bytes) goes into data_base64 with its exact bytes, so the
// CloudEvent is always valid JSON. A replayed delivery carries the
// extension attribute "replay": true.
func CloudEvent(ev *storage.Event, raw []byte, replay bool) []byte {
	var b bytes.Buffer
	b.Grow(len(raw) + 512)
	b.WriteString(`{"specversion":"1.0","id":`)
	writeString(&b, ev.ID)
	b.WriteString(`,"source":`)
	writeString(&b, "/sources/"+ev.Source)
	b.WriteString(`,"type":`)
	writeString(&b, EventType(ev))
	if ev.Subject != "" {
		b.WriteString(`,"subject":`)
		writeString(&b, ev.Subject)
	}
	t := ev.Time
	if t.IsZero() {
		t = ev.ReceivedAt
	}
	b.WriteString(`,"time":`)
	writeString(&b, t.UTC().Format(time.RFC3339Nano))
	b.WriteString(`,"provider":`)
	writeString(&b, ev.Provider)
	b.WriteString(`,"dedupekey":`)
	writeString(&b, ev.DedupeKey)
	if replay {
		b.WriteString(`,"replay":true`)
	}
	switch {
	case !json.Valid(raw):
		b.WriteString(`,"datacontenttype":"application/octet-stream","data_base64":`)
		writeString(&b, base64.StdEncoding.EncodeToString(raw))
	case !utf8.Valid(raw):
		// json.Valid does not check UTF-8 inside strings.
		b.WriteString(`,"datacontenttype":"application/json","data_base64":`)
		writeString(&b, base64.StdEncoding.EncodeToString(raw))
	default:
		b.WriteString(`,"datacontenttype":"application/json","data":`)
		b.Write(bytes.TrimSpace(raw))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// EventType is the CloudEvents type of a stored event: "<provider>.<type>".
func EventType(ev *storage.Event) string {
	t := ev.Type
	if t == "" {
		t = "unknown"
	}
	return ev.Provider + "." + t
}

func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s)
	b.Write(enc)
}
