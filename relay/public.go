package relay

import (
	"context"
	"net/http"
)

// startPublic binds the public listener(s) for h: plain HTTP on
// server.listen. (TLS is wired here too once enabled.)
func (s *Server) startPublic(ctx context.Context, h http.Handler) error {
	return s.listen("public", s.cfg.Server.Listen, h)
}
