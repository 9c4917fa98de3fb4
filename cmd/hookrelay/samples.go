package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/providers"
)

// sample builds request n of a run: the provider's sample payload of
// event, whose dedupe key is unique to (run, n), padded to about size
// bytes (or custom, when given), and the headers the provider would send.
func sample(ad providers.Adapter, spec *providers.Spec, event, run string, n int, size int, custom []byte, now time.Time) ([]byte, http.Header, error) {
	uid := fmt.Sprintf("%s%06d", run, n)
	body := custom
	if body == nil {
		payload := spec.Sample(event, uid, now)
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, nil, err
		}
		if pad := size - len(b) - len(`,"padding":""`); size > 0 && pad > 0 {
			payload["padding"] = strings.Repeat("x", pad)
			if b, err = json.Marshal(payload); err != nil {
				return nil, nil, err
			}
		}
		body = b
	}
	if spec.SignSample != nil {
		return spec.SignSample(ad, event, body, uid, now)
	}
	h, err := ad.Sign(body, now)
	if err != nil {
		return nil, nil, err
	}
	return body, h, nil
}
