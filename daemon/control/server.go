package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// MaxRequest caps one request; a request is a command and a few words.
	MaxRequest = 64 << 10
	// MaxResponse caps one response (event output, thousands of addresses).
	MaxResponse = 64 << 20

	// DefaultTimeout bounds one control when neither the server's config nor
	// the request says otherwise: CTDB's ControlTimeout tunable, 60 s.
	DefaultTimeout = 60 * time.Second

	// ioTimeout bounds reading the request and writing the response, so a
	// client that connects and goes quiet does not hold a goroutine.
	ioTimeout = 10 * time.Second
)

// ErrPermission is the answer to a peer that is neither root nor the
// daemon's own user.
const ErrPermission = "permission denied: the control socket is root-only"

// ServerConfig configures a Server.
type ServerConfig struct {
	// Listener is where controls arrive, normally from Listen. The server
	// closes it when it stops.
	Listener net.Listener
	// Handler answers controls; the daemon implements it.
	Handler Handler
	// Logger; nil means slog.Default(). "component=control" is added.
	Logger *slog.Logger
	// Timeout bounds a control whose request carries no Timeout; 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

// Server serves the control socket: one goroutine per connection, one
// request and one response each. Handler.Handle runs with a context that
// ends at the control's timeout or when the server stops; a handler must
// honour it, since Close waits for it.
type Server struct {
	l       net.Listener
	h       Handler
	log     *slog.Logger
	timeout time.Duration

	// allow decides whether a peer uid may use the socket; peerUID finds
	// it. Fields so that tests can play a peer that is not root.
	allow   func(uid uint32) bool
	peerUID func(c net.Conn) (uint32, error)

	stop     context.CancelFunc // ends every handler's context
	stopCtx  context.Context
	stopOnce sync.Once

	// wg counts Run, which Close waits for; connWG counts the connection
	// goroutines, which Run waits for.
	wg     sync.WaitGroup
	connWG sync.WaitGroup

	// mu guards closed, running and conns.
	mu      sync.Mutex
	closed  bool
	running bool
	conns   map[net.Conn]struct{}
}

// NewServer checks cfg and fills its defaults; it starts nothing.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Listener == nil {
		return nil, errors.New("control: ServerConfig.Listener is nil")
	}
	if cfg.Handler == nil {
		return nil, errors.New("control: ServerConfig.Handler is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	self := uint32(os.Getuid())
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		l:       cfg.Listener,
		h:       cfg.Handler,
		log:     cfg.Logger.With("component", "control"),
		timeout: cfg.Timeout,
		// Root, or the daemon's own user (tests run the daemon unprivileged).
		allow:   func(uid uint32) bool { return uid == 0 || uid == self },
		peerUID: peerUID,
		stop:    cancel,
		stopCtx: ctx,
		conns:   map[net.Conn]struct{}{},
	}, nil
}

// Run accepts connections until ctx ends or Close is called, then waits
// for the controls in progress and returns nil. It returns an error only
// when the listener fails.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	if s.running {
		s.mu.Unlock()
		return errors.New("control: Server.Run called twice")
	}
	s.running = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	// Handlers see the end of ctx as well as Close.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := context.AfterFunc(s.stopCtx, cancel)
	defer stopWatch()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		<-ctx.Done()
		s.shutdown()
	}()

	var err error
	var backoff time.Duration
	for {
		c, aerr := s.l.Accept()
		if aerr != nil {
			if ctx.Err() != nil || s.stopCtx.Err() != nil {
				break // stopping: shutdown closed the listener
			}
			var ne net.Error
			if errors.As(aerr, &ne) && ne.Timeout() || errors.Is(aerr, unix.EMFILE) || errors.Is(aerr, unix.ENFILE) {
				// Out of descriptors or a passing fault: wait and retry,
				// as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accepting control connection", "err", aerr, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				continue
			}
			err = fmt.Errorf("accepting control connections: %w", aerr)
			break
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			break
		}
		s.connWG.Add(1)
		go func() {
			defer s.connWG.Done()
			defer s.untrack(c)
			s.serve(ctx, c)
		}()
	}
	cancel()
	<-watchDone
	s.connWG.Wait()
	return err
}

// Close stops the server: no new connections, handlers' contexts end, and
// it returns once Run and every connection goroutine have finished. It is
// safe to call more than once and from several goroutines.
func (s *Server) Close() error {
	s.shutdown()
	s.wg.Wait()
	return nil
}

// shutdown closes the listener, cancels the handlers and unblocks readers.
func (s *Server) shutdown() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			// Unblocks a goroutine still waiting for its request; a
			// response being written keeps its own write deadline.
			c.SetReadDeadline(time.Now())
		}
		s.mu.Unlock()
		s.stop()
		s.l.Close()
	})
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// serve answers the one request of connection c.
func (s *Server) serve(ctx context.Context, c net.Conn) {
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	var req Request
	dec := json.NewDecoder(io.LimitReader(c, MaxRequest))
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return // the peer went away, or we are stopping
		}
		s.log.Warn("reading control request", "err", err)
		s.reply(c, Response{ExitCode: 1, Error: fmt.Sprintf("bad control request: %v", err)})
		return
	}

	uid, err := s.peerUID(c)
	if err != nil {
		s.log.Warn("checking control peer", "command", req.Command, "err", err)
		s.reply(c, Response{ExitCode: 1, Error: ErrPermission})
		return
	}
	if !s.allow(uid) {
		s.log.Warn("control refused: peer is not root", "command", req.Command, "uid", uid)
		s.reply(c, Response{ExitCode: 1, Error: ErrPermission})
		return
	}

	start := time.Now()
	resp := s.handle(ctx, req)
	s.log.Debug("control", "command", req.Command, "args", req.Args, "target", req.Target,
		"exit_code", resp.ExitCode, "err", resp.Error, "took", time.Since(start))
	s.reply(c, resp)
}

// handle runs the handler under the control's timeout and turns a panic
// into an error answer, so one bad control does not take the daemon down.
func (s *Server) handle(ctx context.Context, req Request) (resp Response) {
	timeout := s.timeout
	if req.Timeout > 0 {
		timeout = req.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("control handler panicked", "command", req.Command, "panic", r)
			resp = Response{ExitCode: 1, Error: fmt.Sprintf("internal error in ctdbd handling %s: %v", req.Command, r)}
		}
	}()
	return s.h.Handle(ctx, req)
}

func (s *Server) reply(c net.Conn, resp Response) {
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := json.NewEncoder(c).Encode(resp); err != nil {
		s.log.Debug("writing control response", "err", err)
	}
}

// peerUID is the uid of the process on the other end of c (SO_PEERCRED).
func peerUID(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("peer credentials: %T is not a unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return 0, fmt.Errorf("peer credentials: %w", cerr)
	}
	return cred.Uid, nil
}

// Reply is a successful Response carrying data (nil: none). A value that
// cannot be encoded becomes an error answer.
func Reply(data any) Response {
	if data == nil {
		return Response{}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return Response{ExitCode: 1, Error: fmt.Sprintf("encoding answer: %v", err)}
	}
	return Response{Data: b}
}

// Failf is an error Response; code 0 becomes 1.
func Failf(code int, format string, args ...any) Response {
	if code == 0 {
		code = 1
	}
	return Response{ExitCode: code, Error: fmt.Sprintf(format, args...)}
}

// HandlerFunc lets a function serve as a Handler.
type HandlerFunc func(ctx context.Context, req Request) Response

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req Request) Response { return f(ctx, req) }
