package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
)

// ErrNoServer means nothing listens on the admin address.
var ErrNoServer = errors.New("no server on the admin address")

// Client talks to a running server's admin API.
type Client struct {
	Base  string // http://127.0.0.1:9090
	Token string
	HTTP  *http.Client
}

var _ API = (*Client)(nil)

// NewClient returns a client for the admin listener at addr.
func NewClient(addr, token string) *Client {
	return &Client{Base: "http://" + addr, Token: token, HTTP: &http.Client{Timeout: 15 * time.Minute}}
}

// Ping checks that a hookrelay admin API answers; it returns ErrNoServer
// if the connection is refused.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.do(ctx, http.MethodGet, "/api/health", nil, nil)
}

// List implements API.
func (c *Client) List(ctx context.Context, f storage.Filter, cursor string, limit int) (*Page, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("source", f.Source)
	set("provider", f.Provider)
	set("type", f.Type)
	set("status", string(f.Status))
	set("cursor", cursor)
	set("ids", strings.Join(f.IDs, ","))
	if !f.Since.IsZero() {
		set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		set("until", f.Until.Format(time.RFC3339Nano))
	}
	if limit > 0 {
		set("limit", strconv.Itoa(limit))
	}
	var p Page
	if err := c.do(ctx, http.MethodGet, "/api/events?"+q.Encode(), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Get implements API.
func (c *Client) Get(ctx context.Context, id string) (*EventDetail, error) {
	var d EventDetail
	if err := c.do(ctx, http.MethodGet, "/api/events/"+url.PathEscape(id), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Replay implements API. Progress is not streamed over HTTP.
func (c *Client) Replay(ctx context.Context, req ReplayRequest, progress func(Progress)) (*ReplayReport, error) {
	var rep ReplayReport
	if err := c.do(ctx, http.MethodPost, "/api/replay", req, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// Reload asks the server to re-read its config file. A refusal (an
// invalid file, a change that needs a restart) is an error carrying the
// server's reason.
func (c *Client) Reload(ctx context.Context) error {
	err := c.do(ctx, http.MethodPost, "/api/reload", struct{}{}, nil)
	if err != nil && !errors.Is(err, ErrNoServer) {
		var re *RemoteError
		if errors.As(err, &re) && re.Status == http.StatusUnprocessableEntity {
			return errors.New(re.Msg)
		}
	}
	return err
}

// ClusterStatus implements API.
func (c *Client) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	var st ClusterStatus
	if err := c.do(ctx, http.MethodGet, "/api/cluster", nil, &st); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, ErrNotClustered
		}
		return nil, err
	}
	return &st, nil
}

// RemoteError is an error answer of the admin API.
type RemoteError struct {
	Status int
	Msg    string
}

// Error names the server's message and the HTTP status.
func (e *RemoteError) Error() string { return fmt.Sprintf("admin API: %s (HTTP %d)", e.Msg, e.Status) }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return fmt.Errorf("%w (%s)", ErrNoServer, c.Base)
		}
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		var err error = &RemoteError{Status: resp.StatusCode, Msg: e.Error}
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %s", storage.ErrNotFound, e.Error)
		}
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
