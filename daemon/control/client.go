package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// DialError is a failure to reach the daemon's socket. Its message says
// what an operator should do about it; Unwrap gives the system error.
type DialError struct {
	Path string
	Err  error
}

func (e *DialError) Error() string {
	switch {
	case errors.Is(e.Err, syscall.ENOENT), errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot connect to ctdbd at %s: is ctdbd running?", e.Path)
	case errors.Is(e.Err, syscall.EACCES), errors.Is(e.Err, syscall.EPERM):
		return fmt.Sprintf("permission denied connecting to %s: the control socket is root-only; run ctdb as root", e.Path)
	}
	return fmt.Sprintf("connecting to ctdbd at %s: %v", e.Path, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// Call sends req to the daemon listening at path and returns its answer.
// ctx bounds the whole exchange; when it has a deadline and req.Timeout is
// 0, req.Timeout is set to the time left, so the daemon stops working on
// a control the client no longer waits for. A deadline that passes gives
// an error wrapping context.DeadlineExceeded; a failure to connect is a
// *DialError.
func Call(ctx context.Context, path string, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, fmt.Errorf("connecting to ctdbd at %s: %w", path, ctx.Err())
		}
		return Response{}, &DialError{Path: path, Err: err}
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		if req.Timeout == 0 {
			req.Timeout = time.Until(dl)
		}
	}
	// A cancelled ctx (not only a deadline) must unblock the read too.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, callError(ctx, path, "sending "+req.Command+" to", err)
	}
	var resp Response
	if err := json.NewDecoder(io.LimitReader(c, MaxResponse)).Decode(&resp); err != nil {
		if errors.Is(err, io.EOF) {
			return Response{}, fmt.Errorf("ctdbd at %s closed the connection without answering %s", path, req.Command)
		}
		return Response{}, callError(ctx, path, "reading the answer to "+req.Command+" from", err)
	}
	return resp, nil
}

func callError(ctx context.Context, path, doing string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s ctdbd at %s: %w", doing, path, ctx.Err())
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%s ctdbd at %s: %w", doing, path, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s ctdbd at %s: %w", doing, path, err)
}
